//! Replay: one JSONL line, a [`Post`] in the Kafka envelope (the demo file and benchmarks), read
//! through `schema::decode` so a replayed post passes exactly the checks a consumer applies.

use super::ItemError;
use schema::{Limits, Post};

/// Parses one line. Blank lines are `Ok(None)`.
pub fn parse_line(line: &[u8], limits: &Limits) -> Result<Option<Post>, ItemError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(schema::decode::<Post>(line, limits)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shipped_demo_file_parses() {
        let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/demo/posts.jsonl")).unwrap();
        let posts: Vec<Post> =
            text.split(|b| *b == b'\n').filter_map(|l| parse_line(l, &Limits::default()).unwrap()).collect();
        assert!(posts.len() >= 10);
        assert_eq!(posts[0].id, "demo-0000");
    }

    #[test]
    fn bad_lines_are_typed() {
        let l = Limits::default();
        assert_eq!(parse_line(b"  \r", &l).unwrap(), None);
        assert_eq!(parse_line(b"{", &l).unwrap_err().kind(), "malformed");
        assert_eq!(parse_line(b"{\"schema_version\":\"9.0\"}", &l).unwrap_err().kind(), "unsupported_version");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_line(&bytes, &Limits::default());
        }
    }
}
