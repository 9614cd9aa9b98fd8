//! Sealing and opening profile values.
//!
//! ChaCha20-Poly1305 under the wallet's 32-byte profile key. Every write
//! draws a fresh random 12-byte nonce, so equal values never produce equal
//! ciphertexts; the entry's key string is the associated data, so a sealed
//! value copied under another key fails to open instead of being misread.

use chacha20poly1305::{
    ChaCha20Poly1305, Key, KeyInit, Nonce,
    aead::{Aead, Payload},
};

use super::{ProfileError, entry::Sealed};

/// A profile key ready to seal and open values.
#[derive(Clone)]
pub(crate) struct ProfileCipher {
    aead: ChaCha20Poly1305,
}

impl ProfileCipher {
    pub(crate) fn new(profile_key: &[u8; 32]) -> ProfileCipher {
        ProfileCipher {
            aead: ChaCha20Poly1305::new(Key::from_slice(profile_key)),
        }
    }

    /// Seals `plaintext` for `key` under a fresh nonce.
    pub(crate) fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Sealed, ProfileError> {
        let nonce: [u8; 12] = rand::random();
        let ciphertext = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| ProfileError::Encrypt {
                key: key.to_owned(),
            })?;
        Ok(Sealed { nonce, ciphertext })
    }

    /// Opens a value sealed for `key`; fails if the profile key differs, the
    /// bytes were altered, or the value was sealed for another key.
    pub(crate) fn open(&self, key: &str, sealed: &Sealed) -> Result<Vec<u8>, ProfileError> {
        self.aead
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| ProfileError::Decrypt {
                key: key.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_fresh_nonces() {
        let cipher = ProfileCipher::new(&[7; 32]);
        let a = cipher.seal("k", b"secret").unwrap();
        let b = cipher.seal("k", b"secret").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(cipher.open("k", &a).unwrap(), b"secret");
        assert_eq!(a.ciphertext.len(), b"secret".len() + 16);
    }

    #[test]
    fn another_profile_key_or_entry_key_fails_naming_the_key() {
        let sealed = ProfileCipher::new(&[7; 32]).seal("k", b"secret").unwrap();
        let err = ProfileCipher::new(&[8; 32]).open("k", &sealed).unwrap_err();
        assert!(err.to_string().contains("`k`"), "{err}");
        let err = ProfileCipher::new(&[7; 32])
            .open("other", &sealed)
            .unwrap_err();
        assert!(err.to_string().contains("`other`"), "{err}");
    }
}
