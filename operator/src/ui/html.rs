//! The one escaping function of the web page, and the path encoding of links.
//!
//! Invariant: every piece of text the page prints that did not come from a literal in
//! `render.rs` (spec names, condition messages, errors, ARNs, URLs) goes through [`escape`]
//! exactly once; link paths built from names also go through [`path_segment`] first.

/// `s` made safe as HTML text and as a double- or single-quoted attribute value: `&`, `<`,
/// `>`, `"` and `'` become character references; everything else is kept.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as one URL path segment: RFC 3986 unreserved characters kept, every other byte of its
/// UTF-8 percent-encoded (so `/`, `?`, `#`, `<` and spaces cannot leave the segment).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped_and_other_text_is_kept() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("prod-web élan 100%"), "prod-web élan 100%");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn escaping_twice_escapes_the_ampersands_of_the_first_pass() {
        // Callers escape once: a second pass is visible, never a silent no-op.
        assert_eq!(escape(&escape("<")), "&amp;lt;");
    }

    #[test]
    fn a_path_segment_cannot_carry_slashes_queries_or_markup() {
        assert_eq!(path_segment("web-1_a.b~"), "web-1_a.b~");
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(path_segment("<x> é"), "%3Cx%3E%20%C3%A9");
    }
}
