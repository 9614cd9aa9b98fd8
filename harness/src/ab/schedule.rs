//! Interleaving the two branches' iterations in ABBA blocks, so that drift
//! over the run (a warming machine, a filling disk) hits both alike.

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The reference.
    Baseline,
    /// The change under test.
    Treatment,
}

impl Side {
    /// `baseline` or `treatment`, as used in folder names.
    pub fn name(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Treatment => "treatment",
        }
    }
}

/// The order in which to run iterations so that each side reaches
/// `per_side`, continuing a schedule that already ran `done` per side:
/// blocks alternate AB, BA, AB, ... (so the whole run reads A B B A A B B A).
pub fn abba(done: usize, per_side: usize) -> Vec<Side> {
    let mut order = Vec::new();
    for block in done..per_side {
        if block % 2 == 0 {
            order.extend([Side::Baseline, Side::Treatment]);
        } else {
            order.extend([Side::Treatment, Side::Baseline]);
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::{Side::*, *};

    #[test]
    fn blocks_alternate_and_sides_stay_balanced() {
        assert_eq!(
            abba(0, 3),
            vec![
                Baseline, Treatment, Treatment, Baseline, Baseline, Treatment
            ]
        );
        let extended: Vec<Side> = abba(0, 3).into_iter().chain(abba(3, 5)).collect();
        assert_eq!(
            extended,
            abba(0, 5),
            "growing the run keeps the same pattern"
        );
        for n in 0..12 {
            let order = abba(0, n);
            assert_eq!(order.iter().filter(|s| **s == Baseline).count(), n);
            assert_eq!(order.iter().filter(|s| **s == Treatment).count(), n);
        }
    }
}
