//! The OpenAPI 3 document (`GET /trd/openapi.json`) and the Swagger UI (`GET /trd/docs`).
//!
//! Operations are generated from the route handlers themselves (`#[utoipa::path]` sits on each
//! Rocket route, which supplies the method, path and parameters), and their bodies are the
//! very types the handlers return ([`crate::shapes`]): a route cannot exist without its entry,
//! nor a shape change without the document changing with it. The contract's error response is
//! declared once, here, for every operation.

use utoipa::openapi::path::{Paths, PathsBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, Ref};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ErrorBody;

/// Where the document and the UI are served (the UI's index needs the trailing slash so
/// that its relative asset URLs resolve inside it).
pub const DOCUMENT_PATH: &str = "/trd/openapi.json";
pub const UI_PATH: &str = "/trd/docs/";

/// Adds the contract's error body as every operation's `default` response.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let response = ResponseBuilder::new()
            .description("An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                op.responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TRD",
        description = "Folder-batch speech transcription: upload or drop audio files, start a \
            batch, follow its progress, download transcripts. Every path also answers with a \
            trailing slash. Errors are `{\"error\": {\"status\", \"reason\", \"message\"}}`."
    ),
    paths(
        crate::faces::trd::audiofile::get_record,
        crate::faces::trd::audiofile::list_all,
        crate::faces::trd::audiofile::list_batch,
        crate::faces::trd::audiofile::create_file,
        crate::faces::trd::audiofile::create_batch,
        crate::faces::trd::audiofile::delete_file,
        crate::faces::trd::audiofile::delete_batch,
        crate::faces::trd::upload::upload,
        crate::faces::trd::transcription::start_one,
        crate::faces::trd::transcription::start_batch,
        crate::faces::trd::transcription::stop_one,
        crate::faces::trd::transcription::stop_batch,
        crate::faces::trd::transcription::reset_one,
        crate::faces::trd::transcription::reset_batch,
        crate::faces::trd::transcription::status_one,
        crate::faces::trd::transcription::status_batch,
        crate::faces::trd::transcription::result_one,
        crate::faces::trd::transcription::result_batch,
        crate::faces::trd::query::query_collection,
        crate::faces::trd::webhook::whoami,
        crate::faces::trd::webhook::validate_get,
        crate::faces::trd::webhook::validate_post,
        crate::routes::operations::health,
        crate::routes::operations::metrics,
    ),
    components(schemas(ErrorBody, crate::faces::trd::query::QueryCollection)),
    modifiers(&ErrorResponses),
    tags(
        (name = "audiofile", description = "Records, uploads, registration and deletion"),
        (name = "transcription", description = "Start, stop, reset, status and results"),
        (name = "query", description = "Raw records as newline-delimited JSON"),
        (name = "webhook", description = "Callback targets"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// The document, with the `/trd` mount point in front of every path (the handlers are
/// declared relative to it).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let mut paths: Paths = PathsBuilder::new().build();
    for (path, item) in std::mem::take(&mut doc.paths.paths) {
        paths.paths.insert(format!("/trd{path}"), item);
    }
    doc.paths = paths;
    doc
}

/// The routes serving the document and the UI (assets compiled into the binary).
pub fn routes() -> Vec<rocket::Route> {
    SwaggerUi::new(format!("{UI_PATH}<_..>"))
        .url(DOCUMENT_PATH, document())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_under_trd_and_declares_the_error_response() {
        let doc = document();
        assert!(doc.paths.paths.len() >= 20);
        for (path, item) in &doc.paths.paths {
            assert!(path.starts_with("/trd/"), "{path}");
            for op in [&item.get, &item.post, &item.delete].into_iter().flatten() {
                assert!(op.responses.responses.contains_key("200"), "{path}");
                assert!(op.responses.responses.contains_key("default"), "{path}");
            }
        }
        let schemas = &doc.components.expect("components").schemas;
        for shape in [
            "Record",
            "TranscriptResult",
            "BatchStatus",
            "FileStatus",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(shape), "{shape} is in the document");
        }
    }
}
