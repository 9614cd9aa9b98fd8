//! The shape of the op-log's Merkle DAG: which entries are known and which
//! are heads (known entries no known entry links to).
//!
//! Heads are computed as `known - referenced`, which does not depend on the
//! order entries arrive in: a child may arrive before its parent, and a lean
//! snapshot may link to entries this replica never sees.

use std::collections::{BTreeSet, HashSet};

use sphere_protocol::ipld::Cid;

#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    known: HashSet<Cid>,
    referenced: HashSet<Cid>,
    heads: BTreeSet<Cid>,
}

impl LogIndex {
    pub(crate) fn contains(&self, cid: &Cid) -> bool {
        self.known.contains(cid)
    }

    pub(crate) fn len(&self) -> usize {
        self.known.len()
    }

    pub(crate) fn heads(&self) -> Vec<Cid> {
        self.heads.iter().copied().collect()
    }

    /// Adds an entry and its links; false if it was already known.
    pub(crate) fn insert(&mut self, cid: Cid, next: &[Cid]) -> bool {
        if !self.known.insert(cid) {
            return false;
        }
        for link in next {
            self.referenced.insert(*link);
            self.heads.remove(link);
        }
        if !self.referenced.contains(&cid) {
            self.heads.insert(cid);
        }
        true
    }

    /// The heads there would be after inserting `new` (cid, next) pairs.
    pub(crate) fn heads_after(&self, new: &[(Cid, &[Cid])]) -> Vec<Cid> {
        let new_links: HashSet<&Cid> = new.iter().flat_map(|(_, next)| next.iter()).collect();
        let mut heads = self.heads.clone();
        heads.retain(|head| !new_links.contains(head));
        for (cid, _) in new {
            if !self.known.contains(cid)
                && !self.referenced.contains(cid)
                && !new_links.contains(cid)
            {
                heads.insert(*cid);
            }
        }
        heads.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use sphere_protocol::ipld::{Block, Codec};

    use super::*;

    fn cid(n: u8) -> Cid {
        Block::new(Codec::Raw, vec![n]).cid
    }

    #[test]
    fn heads_do_not_depend_on_arrival_order() {
        let (a, b, c) = (cid(1), cid(2), cid(3));
        // a <- b, a <- c: two concurrent children of a.
        let links: [(Cid, Vec<Cid>); 3] = [(a, vec![]), (b, vec![a]), (c, vec![a])];
        let mut forward = LogIndex::default();
        let mut backward = LogIndex::default();
        for (cid, next) in &links {
            forward.insert(*cid, next);
        }
        for (cid, next) in links.iter().rev() {
            backward.insert(*cid, next);
        }
        assert_eq!(forward.heads(), backward.heads());
        assert_eq!(forward.heads().len(), 2);
        assert!(!forward.insert(a, &[]), "already known");
        assert_eq!(forward.len(), 3);

        let fresh = LogIndex::default();
        let pairs: Vec<(Cid, &[Cid])> = links.iter().map(|(c, n)| (*c, n.as_slice())).collect();
        assert_eq!(fresh.heads_after(&pairs), forward.heads());
    }
}
