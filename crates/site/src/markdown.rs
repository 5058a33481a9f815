//! Untrusted Markdown (rule descriptions, Elastic notes) → HTML that cannot run code: raw HTML
//! in the source is shown as text, and link/image URLs outside a small allow-list become `#`.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// Is this URL safe to put in an `href`/`src`? Schemes other than http(s)/mailto are refused
/// (`javascript:`, `data:`, `vbscript:`…), including spellings hidden by case, whitespace or
/// control characters, which browsers strip before reading the scheme.
pub fn safe_url(url: &str) -> bool {
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    match cleaned.find(':') {
        None => true,
        Some(colon) => {
            // A colon after a path/query/fragment start is not a scheme separator.
            if cleaned[..colon].contains(['/', '?', '#']) {
                return true;
            }
            let scheme = &cleaned[..colon];
            matches!(scheme, "http" | "https" | "mailto")
        }
    }
}

fn clean_url(url: CowStr<'_>) -> CowStr<'_> {
    if safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// Renders Markdown to HTML safe to embed in a page.
pub fn render(text: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let parser = Parser::new_ext(text, opts).map(|ev| match ev {
        // Raw HTML is displayed, never interpreted.
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: clean_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: clean_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    pulldown_cmark::html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_escaped() {
        let html = render("hi <script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn block_html_is_escaped() {
        let html = render("<div onclick=\"x()\">\n<script>alert(1)</script>\n</div>\n");
        assert!(!html.contains("<div"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn dangerous_links_are_neutralised() {
        for src in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](java\tscript:alert(1))",
            "[x](<java script:alert(1)>)",
            "[x](data:text/html,<script>alert(1)</script>)",
            "![x](javascript:alert(1))",
            "<javascript:alert(1)>",
        ] {
            let html = render(src);
            let lower = html.to_ascii_lowercase();
            // The text may show the URL; no href or src may carry it.
            for bad in ["href=\"java", "src=\"java", "href=\"data:", "src=\"data:"] {
                assert!(!lower.contains(bad), "{src} → {html}");
            }
            if lower.contains("<a ") || lower.contains("<img ") {
                assert!(lower.contains("=\"#\""), "{src} → {html}");
            }
        }
    }

    #[test]
    fn good_links_and_markup_survive() {
        let html = render("**Bold** [doc](https://example.com/a?b=c) `code`\n\n- item");
        assert!(html.contains("<strong>Bold</strong>"));
        assert!(html.contains("href=\"https://example.com/a?b=c\""));
        assert!(html.contains("<code>code</code>"));
        assert!(html.contains("<li>item</li>"));
    }

    #[test]
    fn safe_url_cases() {
        assert!(safe_url("https://x"));
        assert!(safe_url("../a/b#c:d"));
        assert!(safe_url("mailto:a@b"));
        assert!(!safe_url(" javascript:x"));
        assert!(!safe_url("vbscript:x"));
        assert!(!safe_url("\u{1}javascript:x"));
    }
}
