//! An operator's file over the embedded one: what the file sets wins, what
//! it leaves out comes from below.

pub(super) trait Layer: Sized {
    fn over(self, base: Self) -> Self;
}

/// Two optional sections, the upper one over the lower.
pub(super) fn layer<T: Layer>(upper: Option<T>, lower: Option<T>) -> Option<T> {
    match (upper, lower) {
        (Some(upper), Some(lower)) => Some(upper.over(lower)),
        (upper, lower) => upper.or(lower),
    }
}
