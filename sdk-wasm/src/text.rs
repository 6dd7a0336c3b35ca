//! Text helpers the drivers share, written for the browser build's size.

/// The pieces of `text` between `sep` bytes, as `str::split` gives them (`""` for empty text,
/// an empty piece after a trailing separator). `sep` must be ASCII, which keeps every piece on
/// character boundaries. By hand: `str::split`'s char searcher is 0.7 KB of the web build's
/// code for the three places that split.
pub fn pieces(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    core::iter::from_fn(move || {
        let t = rest?;
        match t.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = t.get(i + 1..);
                t.get(..i)
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_are_what_split_gives() {
        for text in ["", "a", "a b", " a  b ", "é b\u{1f600} c", "   "] {
            assert_eq!(
                pieces(text, b' ').collect::<Vec<_>>(),
                text.split(' ').collect::<Vec<_>>(),
                "{text:?}"
            );
        }
    }
}
