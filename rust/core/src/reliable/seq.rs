//! 32-bit datagram sequence numbers that wrap, compared by serial-number arithmetic (RFC 1982): `a` is before
//! `b` when `b - a`, taken modulo 2^32, is below 2^31. The protocol never has 2^31 datagrams outstanding.

/// A datagram sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// The number `n` places after this one.
    pub fn plus(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }

    /// How many places `self` is after `earlier` (meaningful when `earlier` is not after `self`).
    pub fn since(self, earlier: Seq) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// True when `self` comes before `other`.
    pub fn is_before(self, other: Seq) -> bool {
        let d = other.0.wrapping_sub(self.0);
        d != 0 && d < 1 << 31
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_survives_wrap_around() {
        let near_end = Seq(u32::MAX - 1);
        let wrapped = near_end.plus(5);
        assert_eq!(wrapped, Seq(3));
        assert!(near_end.is_before(wrapped));
        assert!(!wrapped.is_before(near_end));
        assert_eq!(wrapped.since(near_end), 5);
        assert!(!Seq(7).is_before(Seq(7)));
        assert!(Seq(0).is_before(Seq(1 << 30)));
        assert!(
            !Seq(0).is_before(Seq(1 << 31)),
            "half the space away is treated as before, not after"
        );
    }
}
