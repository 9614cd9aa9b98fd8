//! Parsing the CID a request names, as Kubo accepts it.
//!
//! Kubo's RPC takes either a bare CID or an IPFS path (`/ipfs/<cid>`) in its
//! `arg` parameter. This gateway resolves no paths inside a DAG, so anything
//! after the CID is refused with a message saying so rather than ignored.

use cid::Cid;

/// Why a request's CID argument is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum CidArgError {
    /// No argument where one is required.
    #[error("argument \"{0}\" is required")]
    Missing(&'static str),
    /// The argument does not parse as a CID.
    #[error("invalid cid `{arg}`: {reason}")]
    Invalid {
        /// The argument as given.
        arg: String,
        /// What the CID parser said.
        reason: String,
    },
    /// The argument names a path inside a DAG, which is not supported.
    #[error("path `{0}` goes inside a dag; this gateway only serves whole blocks and dags by cid")]
    SubPath(String),
}

/// Parses a required `arg` named `name` (as Kubo names it in its errors).
pub(crate) fn required_cid(arg: Option<&str>, name: &'static str) -> Result<Cid, CidArgError> {
    match arg {
        None | Some("") => Err(CidArgError::Missing(name)),
        Some(arg) => parse_cid_arg(arg),
    }
}

/// Parses a bare CID or an `/ipfs/<cid>` path.
pub(crate) fn parse_cid_arg(arg: &str) -> Result<Cid, CidArgError> {
    let trimmed = arg.trim();
    let rest = trimmed.strip_prefix("/ipfs/").unwrap_or(trimmed);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(CidArgError::SubPath(arg.to_owned()));
    }
    rest.parse::<Cid>().map_err(|e| CidArgError::Invalid {
        arg: arg.to_owned(),
        reason: e.to_string().to_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq";

    #[test]
    fn accepts_bare_cids_and_ipfs_paths() {
        let cid: Cid = HELLO.parse().unwrap();
        assert_eq!(parse_cid_arg(HELLO), Ok(cid));
        assert_eq!(parse_cid_arg(&format!("/ipfs/{HELLO}")), Ok(cid));
        assert_eq!(parse_cid_arg(&format!("/ipfs/{HELLO}/")), Ok(cid));
    }

    #[test]
    fn refuses_garbage_sub_paths_and_absence_by_name() {
        let err = parse_cid_arg("not-a-cid").unwrap_err();
        assert!(err.to_string().contains("`not-a-cid`"), "{err}");
        let path = format!("/ipfs/{HELLO}/a/b");
        assert_eq!(
            parse_cid_arg(&path),
            Err(CidArgError::SubPath(path.clone()))
        );
        assert_eq!(
            required_cid(None, "cid").unwrap_err().to_string(),
            "argument \"cid\" is required"
        );
    }
}
