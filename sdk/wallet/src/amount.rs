//! Token amounts and coin ids, exact to the last base unit.
//!
//! [`Amount`] counts base units in a `u128`; one coin is 10^[`DECIMALS`]
//! base units. No float is involved anywhere: text is parsed digit by digit
//! and printed by integer division, so `0.000000000011` UCT stays exactly
//! 11000000 base units through every round trip.
//!
//! On the wire an amount is its base-unit integer as a JSON *string*, since
//! JSON numbers lose precision above 2^53. For people, [`Amount`]'s
//! `Display` is the coin value with trailing zeros trimmed.
//!
//! ```
//! use sphere_sdk::amount::{Amount, Unit};
//! let fee = Amount::parse("0.000000000011", Unit::Coin)?;
//! assert_eq!(fee.base(), 11_000_000);
//! assert_eq!(Amount::from_coins(100).checked_sub(fee).map(|a| a.to_string()),
//!            Some("99.999999999989".to_string()));
//! # Ok::<(), sphere_sdk::amount::AmountError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Decimal places of a coin: one coin is `10^DECIMALS` base units.
pub const DECIMALS: u32 = 18;

/// Base units in one coin.
pub const BASE_PER_COIN: u128 = 10u128.pow(DECIMALS);

/// The unit an amount's text is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Indivisible base units: an integer, no dot.
    Base,
    /// Whole coins with up to [`DECIMALS`] decimals.
    #[default]
    Coin,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Base => "base",
            Unit::Coin => "coin",
        })
    }
}

impl FromStr for Unit {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "base" => Ok(Unit::Base),
            "coin" => Ok(Unit::Coin),
            _ => Err(AmountError::UnknownUnit { text: s.to_owned() }),
        }
    }
}

/// Why an amount, unit or coin id was refused. Each message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// No characters at all.
    #[error("amount is empty; expected digits such as `100` or `0.5`")]
    Empty,
    /// Whitespace anywhere, which usually means two values ran together.
    #[error("amount `{text}` contains whitespace; write it without spaces")]
    Whitespace {
        /// The input.
        text: String,
    },
    /// A leading `-`.
    #[error("amount `{text}` is negative; amounts cannot be below zero")]
    Negative {
        /// The input.
        text: String,
    },
    /// A leading `+`.
    #[error("amount `{text}` has a `+` sign; write digits only")]
    PlusSign {
        /// The input.
        text: String,
    },
    /// Scientific notation such as `1e-5`.
    #[error("amount `{text}` uses an exponent; write it as a plain decimal such as `0.00001`")]
    Exponent {
        /// The input.
        text: String,
    },
    /// A dot with nothing before it, like `.5`.
    #[error(
        "amount `{text}` has no digits before the dot; expected digits before the dot, e.g. `0.5`"
    )]
    MissingIntegerPart {
        /// The input.
        text: String,
    },
    /// A dot with nothing after it, like `5.`.
    #[error("amount `{text}` has no digits after the dot; drop the dot or add digits")]
    MissingFraction {
        /// The input.
        text: String,
    },
    /// Two or more dots.
    #[error("amount `{text}` has more than one dot")]
    ExtraDot {
        /// The input.
        text: String,
    },
    /// A character that is neither a digit nor the dot.
    #[error("amount `{text}` contains `{found}`; expected digits and at most one `.`")]
    InvalidCharacter {
        /// The input.
        text: String,
        /// The first offending character.
        found: char,
    },
    /// A dot in an amount given in base units, which are indivisible.
    #[error(
        "amount `{text}` is in base units, which are whole numbers; drop the `.` or use unit `coin`"
    )]
    FractionalBase {
        /// The input.
        text: String,
    },
    /// Finer than one base unit.
    #[error("amount `{text}` has {decimals} decimals; UCT has at most {max}", max = DECIMALS)]
    TooManyDecimals {
        /// The input.
        text: String,
        /// Digits after the dot.
        decimals: usize,
    },
    /// More than `u128::MAX` base units.
    #[error("amount `{text}` is too large; the maximum is {max} coins", max = Amount::MAX)]
    Overflow {
        /// The input.
        text: String,
    },
    /// A unit name other than `base` or `coin`.
    #[error("unit `{text}` is unknown; expected `base` or `coin`")]
    UnknownUnit {
        /// The input.
        text: String,
    },
    /// A coin id outside `[A-Z0-9]{1,16}`.
    #[error(
        "coin id `{text}` is invalid: {reason}; expected 1-16 characters of A-Z and 0-9, e.g. `UCT`"
    )]
    InvalidCoinId {
        /// The input.
        text: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
}

/// An amount in base units (see the module docs for its text forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u128);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u128::MAX);

    /// `base` base units.
    pub const fn from_base(base: u128) -> Amount {
        Amount(base)
    }

    /// Whole coins. Cannot overflow: `u64::MAX` coins fit in a `u128`.
    pub const fn from_coins(coins: u64) -> Amount {
        Amount(coins as u128 * BASE_PER_COIN)
    }

    /// The count of base units.
    pub const fn base(self) -> u128 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// The total of `amounts`, or `None` on overflow. A plain `Sum` impl
    /// would have to panic or wrap, neither acceptable for money.
    pub fn sum<I: IntoIterator<Item = Amount>>(amounts: I) -> Option<Amount> {
        amounts
            .into_iter()
            .try_fold(Amount::ZERO, |total, amount| total.checked_add(amount))
    }

    /// Parses `text` written in `unit`: digits, and for coins at most one
    /// dot followed by at most [`DECIMALS`] digits. Signs, exponents,
    /// whitespace and bare dots (`.5`, `5.`) are refused so that every
    /// accepted text means exactly one thing.
    pub fn parse(text: &str, unit: Unit) -> Result<Amount, AmountError> {
        let owned = || text.to_owned();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(AmountError::Whitespace { text: owned() });
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative { text: owned() });
        }
        if text.starts_with('+') {
            return Err(AmountError::PlusSign { text: owned() });
        }
        if looks_like_exponent(text) {
            return Err(AmountError::Exponent { text: owned() });
        }
        if let Some(found) = text.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
            return Err(AmountError::InvalidCharacter {
                text: owned(),
                found,
            });
        }
        let (whole, fraction) = match text.split_once('.') {
            None => (text, ""),
            Some(_) if unit == Unit::Base => {
                return Err(AmountError::FractionalBase { text: owned() });
            }
            Some((_, fraction)) if fraction.contains('.') => {
                return Err(AmountError::ExtraDot { text: owned() });
            }
            Some(("", _)) => return Err(AmountError::MissingIntegerPart { text: owned() }),
            Some((_, "")) => return Err(AmountError::MissingFraction { text: owned() }),
            Some(parts) => parts,
        };
        if fraction.len() > DECIMALS as usize {
            return Err(AmountError::TooManyDecimals {
                text: owned(),
                decimals: fraction.len(),
            });
        }
        let overflow = || AmountError::Overflow { text: owned() };
        let whole = digits_value(whole).ok_or_else(overflow)?;
        let base = match unit {
            Unit::Base => whole,
            Unit::Coin => {
                // Right-pad the fraction to 18 digits: "5" means 5 * 10^17.
                let scale = 10u128.pow(DECIMALS - fraction.len() as u32);
                let fraction = digits_value(fraction).ok_or_else(overflow)? * scale;
                whole
                    .checked_mul(BASE_PER_COIN)
                    .and_then(|b| b.checked_add(fraction))
                    .ok_or_else(overflow)?
            }
        };
        Ok(Amount(base))
    }

    /// The amount as text in `unit`: the base integer, or the same form as
    /// `Display` for coins. [`Amount::parse`] reads either back exactly.
    pub fn to_string_in(self, unit: Unit) -> String {
        match unit {
            Unit::Base => self.0.to_string(),
            Unit::Coin => self.to_string(),
        }
    }
}

/// The value of a string of ASCII digits, or `None` past `u128::MAX`.
fn digits_value(digits: &str) -> Option<u128> {
    digits.bytes().try_fold(0u128, |value, digit| {
        value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
    })
}

/// Whether `text` is scientific notation (`1e5`, `2.5E-3`), so it gets a
/// message saying so instead of "contains `e`".
fn looks_like_exponent(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !exponent.is_empty()
        && exponent.chars().all(|c| c.is_ascii_digit())
}

impl fmt::Display for Amount {
    /// Coins with trailing zeros and any trailing dot trimmed: `100`,
    /// `0.000000000011`. Honours width and alignment flags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / BASE_PER_COIN;
        let fraction = self.0 % BASE_PER_COIN;
        if fraction == 0 {
            return f.pad(&whole.to_string());
        }
        let digits = format!("{fraction:0width$}", width = DECIMALS as usize);
        f.pad(&format!("{whole}.{}", digits.trim_end_matches('0')))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(BaseStringVisitor)
    }
}

/// Accepts only a string of base units; a JSON number is refused outright
/// rather than silently rounded by some other producer.
struct BaseStringVisitor;

impl serde::de::Visitor<'_> for BaseStringVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount in base units as a decimal string, e.g. \"11000000\"")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Amount, E> {
        Amount::parse(text, Unit::Base).map_err(E::custom)
    }
}

/// A coin's symbol, such as `UCT`: 1-16 characters of `A-Z` and `0-9`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CoinId(String);

impl CoinId {
    /// The longest accepted id.
    pub const MAX_LEN: usize = 16;

    /// The harness's native coin.
    pub fn uct() -> CoinId {
        CoinId("UCT".to_owned())
    }

    /// The symbol text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CoinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for CoinId {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason| {
            Err(AmountError::InvalidCoinId {
                text: s.to_owned(),
                reason,
            })
        };
        if s.is_empty() {
            return refuse("it is empty");
        }
        if s.len() > CoinId::MAX_LEN {
            return refuse("it is longer than 16 characters");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return refuse("it contains a character other than A-Z or 0-9");
        }
        Ok(CoinId(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for CoinId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn coin(text: &str) -> Amount {
        Amount::parse(text, Unit::Coin).expect("valid coin amount")
    }

    fn refusal(text: &str, unit: Unit) -> String {
        Amount::parse(text, unit)
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn display_trims_trailing_zeros_exactly() {
        let cases: [(u128, &str); 6] = [
            (99_999_999_999_989_000_000, "99.999999999989"),
            (100_000_000_000_011_000_000, "100.000000000011"),
            (100 * BASE_PER_COIN, "100"),
            (11_000_000, "0.000000000011"),
            (0, "0"),
            (1, "0.000000000000000001"),
        ];
        for (base, text) in cases {
            assert_eq!(Amount::from_base(base).to_string(), text);
            assert_eq!(coin(text).base(), base);
        }
        assert_eq!(
            Amount::MAX.to_string(),
            "340282366920938463463.374607431768211455"
        );
        assert_eq!(format!("[{:>5}]", Amount::from_coins(1)), "[    1]");
    }

    #[test]
    fn coin_text_forms_parse_to_the_same_base_units() {
        assert_eq!(coin("100"), Amount::from_coins(100));
        assert_eq!(coin("100.5").base(), 100_500_000_000_000_000_000);
        assert_eq!(coin("0.000000000011").base(), 11_000_000);
        assert_eq!(coin("007.50"), coin("7.5"));
        assert_eq!(coin("0.000"), Amount::ZERO);
        assert_eq!(coin("1.000000000000000000"), Amount::from_coins(1));
        assert_eq!(
            Amount::parse("11000000", Unit::Base),
            Ok(coin("0.000000000011"))
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Amount::from_coins(100);
        let fee = Amount::from_base(11_000_000);
        assert_eq!(
            a.checked_sub(fee).map(|x| x.to_string()).as_deref(),
            Some("99.999999999989")
        );
        assert_eq!(fee.checked_sub(a), None);
        assert_eq!(Amount::MAX.checked_add(Amount::from_base(1)), None);
        assert_eq!(Amount::sum([a, a, fee]), coin("200.000000000011").into());
        assert_eq!(Amount::sum([Amount::MAX, Amount::from_base(1)]), None);
        assert_eq!(Amount::sum(Vec::new()), Some(Amount::ZERO));
        assert!(Amount::default().is_zero());
    }

    #[test]
    fn every_refusal_names_the_input_and_the_rule() {
        assert_eq!(
            refusal("", Unit::Coin),
            "amount is empty; expected digits such as `100` or `0.5`"
        );
        let (base, coin) = (Unit::Base, Unit::Coin);
        let exponent = "uses an exponent; write it as a plain decimal such as `0.00001`";
        let too_large =
            "is too large; the maximum is 340282366920938463463.374607431768211455 coins";
        // Each message is "amount `<input>` " followed by the rule.
        let cases = [
            (
                "1 000",
                coin,
                "contains whitespace; write it without spaces",
            ),
            (" 5", base, "contains whitespace; write it without spaces"),
            ("-1", coin, "is negative; amounts cannot be below zero"),
            ("-1", base, "is negative; amounts cannot be below zero"),
            ("+1", coin, "has a `+` sign; write digits only"),
            ("1e-5", coin, exponent),
            ("2.5E3", base, exponent),
            (
                ".5",
                coin,
                "has no digits before the dot; expected digits before the dot, e.g. `0.5`",
            ),
            (
                "5.",
                coin,
                "has no digits after the dot; drop the dot or add digits",
            ),
            ("1.2.3", coin, "has more than one dot"),
            (
                "12abc",
                coin,
                "contains `a`; expected digits and at most one `.`",
            ),
            (
                "1_000",
                base,
                "contains `_`; expected digits and at most one `.`",
            ),
            (
                "1.5",
                base,
                "is in base units, which are whole numbers; drop the `.` or use unit `coin`",
            ),
            (
                "0.0000000000000000001",
                coin,
                "has 19 decimals; UCT has at most 18",
            ),
            ("340282366920938463463.374607431768211456", coin, too_large),
            ("340282366920938463464", coin, too_large),
            ("340282366920938463463374607431768211456", base, too_large),
        ];
        for (text, unit, rule) in cases {
            assert_eq!(
                refusal(text, unit),
                format!("amount `{text}` {rule}"),
                "in {unit}"
            );
        }
    }

    #[test]
    fn serde_uses_base_unit_strings_only() {
        let a = coin("100.000000000011");
        let json = serde_json::to_string(&a).expect("serialize");
        assert_eq!(json, "\"100000000000011000000\"");
        assert_eq!(
            serde_json::from_str::<Amount>(&json).expect("deserialize"),
            a
        );
        let max = serde_json::to_string(&Amount::MAX).expect("serialize");
        assert_eq!(
            serde_json::from_str::<Amount>(&max).expect("deserialize"),
            Amount::MAX
        );

        let number = serde_json::from_str::<Amount>("100").expect_err("a number");
        assert!(
            number
                .to_string()
                .contains("expected an amount in base units as a decimal string"),
            "{number}"
        );
        let dotted = serde_json::from_str::<Amount>("\"1.5\"").expect_err("not base units");
        assert!(
            dotted.to_string().contains("amount `1.5` is in base units"),
            "{dotted}"
        );
        assert!(serde_json::from_str::<Amount>("\"-3\"").is_err());
        assert!(serde_json::from_str::<Amount>("null").is_err());
    }

    #[test]
    fn unit_text_serde_and_default() {
        assert_eq!(Unit::default(), Unit::Coin);
        assert_eq!("base".parse::<Unit>(), Ok(Unit::Base));
        assert_eq!("coin".parse::<Unit>(), Ok(Unit::Coin));
        assert_eq!(
            "Coin".parse::<Unit>().map_err(|e| e.to_string()),
            Err("unit `Coin` is unknown; expected `base` or `coin`".to_owned())
        );
        assert_eq!(
            serde_json::to_string(&Unit::Base).expect("serialize"),
            "\"base\""
        );
        assert_eq!(
            serde_json::from_str::<Unit>("\"coin\"").expect("deserialize"),
            Unit::Coin
        );
        assert!(serde_json::from_str::<Unit>("\"coins\"").is_err());
        let a = coin("1.25");
        assert_eq!(a.to_string_in(Unit::Base), "1250000000000000000");
        assert_eq!(a.to_string_in(Unit::Coin), "1.25");
    }

    #[test]
    fn coin_ids_are_validated() {
        assert_eq!(CoinId::uct().to_string(), "UCT");
        assert_eq!("UCT".parse::<CoinId>(), Ok(CoinId::uct()));
        assert_eq!(
            "A1B2C3D4E5F6G7H8"
                .parse::<CoinId>()
                .map(|c| c.as_str().len()),
            Ok(16)
        );
        let message = |text: &str| text.parse::<CoinId>().expect_err("refused").to_string();
        assert_eq!(
            message(""),
            "coin id `` is invalid: it is empty; expected 1-16 characters of A-Z and 0-9, e.g. `UCT`"
        );
        assert!(message("ABCDEFGHIJKLMNOPQ").contains("longer than 16 characters"));
        assert!(message("uct").contains("other than A-Z or 0-9"));
        assert!(message("U-CT").contains("`U-CT`"));
        assert_eq!(
            serde_json::to_string(&CoinId::uct()).expect("serialize"),
            "\"UCT\""
        );
        assert_eq!(
            serde_json::from_str::<CoinId>("\"UCT\"").expect("deserialize"),
            CoinId::uct()
        );
        let err = serde_json::from_str::<CoinId>("\"Uct\"").expect_err("lowercase");
        assert!(
            err.to_string().contains("coin id `Uct` is invalid"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn text_forms_round_trip(base in any::<u128>()) {
            let a = Amount::from_base(base);
            prop_assert_eq!(Amount::parse(&a.to_string(), Unit::Coin), Ok(a));
            prop_assert_eq!(Amount::parse(&a.base().to_string(), Unit::Base), Ok(a));
            let json = serde_json::to_string(&a).expect("serialize");
            prop_assert_eq!(serde_json::from_str::<Amount>(&json).expect("deserialize"), a);
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,48}", base in any::<bool>()) {
            let unit = if base { Unit::Base } else { Unit::Coin };
            let _ = Amount::parse(&text, unit);
        }
    }
}
