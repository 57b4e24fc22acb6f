use super::references::resolve_reference;
use super::*;

#[test]
fn references_resolve_like_a_browser() {
    let r = |url, page| resolve_reference(url, page, None);
    assert_eq!(
        r("a.png", "/blog/post.html").as_deref(),
        Some("/blog/a.png")
    );
    assert_eq!(r("../a.png", "/blog/post.html").as_deref(), Some("/a.png"));
    assert_eq!(
        r("../../../a.png", "/blog/p.html").as_deref(),
        Some("/a.png")
    );
    assert_eq!(r("./", "/blog/p.html").as_deref(), Some("/blog/"));
    assert_eq!(r("/x/y?q=1#f", "/p.html").as_deref(), Some("/x/y"));
    assert_eq!(r("img/a.png", "/docs/").as_deref(), Some("/docs/img/a.png"));
    for external in [
        "https://example.com/a.png",
        "//cdn.example.com/x.js",
        "data:image/png;base64,AAAA",
        "mailto:a@example.com",
        "javascript:void(0)",
        "tel:+1",
        "#top",
        "?page=2",
        "",
    ] {
        assert_eq!(r(external, "/p.html"), None, "{external}");
    }
    assert_eq!(
        resolve_reference("a.png", "/blog/post.html", Some("/static/")).as_deref(),
        Some("/static/a.png")
    );
}

#[test]
fn rule_errors_keep_their_place() {
    assert_eq!(
        split_location("_redirects:3: status \"299\" is wrong"),
        (
            "_redirects".to_string(),
            Some(3),
            "status \"299\" is wrong".to_string()
        )
    );
    assert_eq!(split_location("_headers: denied").1, None);
}
