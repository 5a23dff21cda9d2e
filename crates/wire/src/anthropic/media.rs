//! Images and documents: OpenAI's `image_url`/`file` parts ⇄ Anthropic's `image`/`document`
//! blocks with a `base64` or `url` source.

use serde_json::{json, Value};

use super::json::{child, missing, opt_object, opt_str, req_str, Object};
use super::TranslateError;

/// A `data:<media type>;base64,<data>` URL taken apart.
struct DataUrl<'a> {
    media_type: &'a str,
    data: &'a str,
}

/// Parses a base64 data URL; `None` when `url` is not one.
fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (header, data) = rest.split_once(',')?;
    let mut segments = header.split(';');
    let media_type = segments.next()?.trim();
    if media_type.is_empty() || !segments.any(|s| s.trim().eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some(DataUrl { media_type, data })
}

/// OpenAI `image_url.url` (a base64 data URL or an http(s) URL) → an Anthropic `image` block.
pub(crate) fn image_block_from_url(url: &str, path: &str) -> Result<Value, TranslateError> {
    if let Some(data_url) = parse_data_url(url) {
        if !data_url.media_type.starts_with("image/") {
            return Err(TranslateError::at(
                path,
                format!(
                    "`{path}` is a data URL of type `{}`; an image part needs an image type such as image/png or image/jpeg.",
                    data_url.media_type
                ),
            ));
        }
        return Ok(json!({
            "type": "image",
            "source": {"type": "base64", "media_type": data_url.media_type, "data": data_url.data},
        }));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(TranslateError::at(
        path,
        format!(
            "`{path}` must be an http(s) URL or a base64 data URL (`data:image/png;base64,...`)."
        ),
    ))
}

/// OpenAI `file` part (`{file: {file_data: "data:application/pdf;base64,...", filename}}`)
/// → an Anthropic `document` block. Only inline PDFs can be carried over.
pub(crate) fn document_block_from_file(file: &Object, path: &str) -> Result<Value, TranslateError> {
    let data_path = child(path, "file_data");
    let Some(file_data) = opt_str(file, "file_data", path)? else {
        return Err(TranslateError::at(
            data_path,
            format!("`{path}` must carry the file inline as `file_data` (a base64 data URL); uploaded file ids cannot be sent to an Anthropic model."),
        ));
    };
    let data_url = parse_data_url(file_data).filter(|d| d.media_type == "application/pdf");
    let Some(data_url) = data_url else {
        return Err(TranslateError::at(
            data_path.clone(),
            format!("`{data_path}` must be a PDF as a base64 data URL (`data:application/pdf;base64,...`)."),
        ));
    };
    let mut block = json!({
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": data_url.data},
    });
    if let (Some(name), Some(object)) = (opt_str(file, "filename", path)?, block.as_object_mut()) {
        object.insert("title".to_owned(), Value::from(name));
    }
    Ok(block)
}

/// Anthropic image `source` → an OpenAI `image_url` part.
pub(crate) fn image_part_from_source(source: &Object, path: &str) -> Result<Value, TranslateError> {
    let url = match req_str(source, "type", path)? {
        "base64" => format!(
            "data:{};base64,{}",
            req_str(source, "media_type", path)?,
            req_str(source, "data", path)?
        ),
        "url" => req_str(source, "url", path)?.to_owned(),
        other => return Err(unsupported_source(path, other)),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Anthropic `document` block → an OpenAI `file` part (base64 PDF) or `text` part (plain text).
pub(crate) fn part_from_document(block: &Object, path: &str) -> Result<Value, TranslateError> {
    let source_path = child(path, "source");
    let source =
        opt_object(block, "source", path)?.ok_or_else(|| missing(path, "source", "an object"))?;
    match req_str(source, "type", &source_path)? {
        "base64" => {
            let media_type = req_str(source, "media_type", &source_path)?;
            let data = req_str(source, "data", &source_path)?;
            let mut file = json!({"file_data": format!("data:{media_type};base64,{data}")});
            if let (Some(title), Some(object)) =
                (opt_str(block, "title", path)?, file.as_object_mut())
            {
                object.insert("filename".to_owned(), Value::from(title));
            }
            Ok(json!({"type": "file", "file": file}))
        }
        "text" => Ok(json!({"type": "text", "text": req_str(source, "data", &source_path)?})),
        other => Err(unsupported_source(&source_path, other)),
    }
}

fn unsupported_source(path: &str, kind: &str) -> TranslateError {
    TranslateError::at(
        path,
        format!("`{path}` has source type `{kind}`, which cannot be sent to this model; send the content inline as a `base64` source (or a `url` source for images)."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_become_base64_sources() {
        let block = image_block_from_url("data:image/png;base64,iVBORw0KGgo=", "p").expect("ok");
        assert_eq!(block["source"]["type"], "base64");
        assert_eq!(block["source"]["media_type"], "image/png");
        assert_eq!(block["source"]["data"], "iVBORw0KGgo=");
    }

    #[test]
    fn urls_and_bad_urls() {
        let block = image_block_from_url("https://example.com/a.jpg", "p").expect("ok");
        assert_eq!(
            block["source"],
            json!({"type": "url", "url": "https://example.com/a.jpg"})
        );
        let err = image_block_from_url("ftp://x/y.png", "messages[0].content[1].image_url.url")
            .expect_err("ftp");
        assert_eq!(
            err.param.as_deref(),
            Some("messages[0].content[1].image_url.url")
        );
        assert!(image_block_from_url("data:image/png,notbase64", "p").is_err());
        assert!(image_block_from_url("data:text/plain;base64,aGk=", "p").is_err());
    }

    #[test]
    fn sources_become_image_urls() {
        let source = json!({"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"});
        let part = image_part_from_source(source.as_object().expect("object"), "p").expect("ok");
        assert_eq!(part["image_url"]["url"], "data:image/jpeg;base64,/9j/4AAQ");
        let file = json!({"type": "file", "file_id": "file_011"});
        assert!(image_part_from_source(file.as_object().expect("object"), "p").is_err());
    }
}
