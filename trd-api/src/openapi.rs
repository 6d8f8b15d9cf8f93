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
use crate::faces::deepspeech::stt::DsErrorBody;
use crate::faces::openai::OpenAiErrorBody;
use crate::faces::speechmatics::error::SmErrorBody;
use crate::faces::whisper::WhisperErrorBody;

/// Where the document and the UI are served (the UI's index needs the trailing slash so
/// that its relative asset URLs resolve inside it).
pub const DOCUMENT_PATH: &str = "/trd/openapi.json";
pub const UI_PATH: &str = "/trd/docs/";

/// Adds a face's error body as every operation's `default` response.
struct ErrorResponses {
    schema: fn() -> std::borrow::Cow<'static, str>,
    description: &'static str,
    content_type: &'static str,
}

/// The TRD contract's errors (and those of the faces that answer in TRD's shape).
const TRD_ERRORS: ErrorResponses = ErrorResponses {
    schema: ErrorBody::name,
    description: "An error: `{\"error\": {\"status\", \"reason\", \"message\"}}`",
    content_type: "application/json",
};

/// Errors as Speechmatics clients read them.
const SPEECHMATICS_ERRORS: ErrorResponses = ErrorResponses {
    schema: SmErrorBody::name,
    description: "An error: `{\"code\", \"error\", \"detail\"}`",
    content_type: "application/json",
};

/// Errors as OpenAI's SDKs read them.
const OPENAI_ERRORS: ErrorResponses = ErrorResponses {
    schema: OpenAiErrorBody::name,
    description: "An error: `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`",
    content_type: "application/json",
};

/// Errors as whisper-asr-webservice (FastAPI) answers them.
const WHISPER_ERRORS: ErrorResponses = ErrorResponses {
    schema: WhisperErrorBody::name,
    description: "An error: `{\"detail\"}`",
    content_type: "application/json",
};

/// Errors as the DeepSpeech REST server answers them.
const DEEPSPEECH_ERRORS: ErrorResponses = ErrorResponses {
    schema: DsErrorBody::name,
    description: "An error: `{\"exception\", \"status\", \"error\"}`",
    content_type: "application/json",
};

/// UWebASR writes errors inside the format asked for (`# 400 Unknown format` in plain text).
const UWEBASR_ERRORS: ErrorResponses = ErrorResponses {
    schema: UwErrorText::name,
    description: "An error, written in the format asked for",
    content_type: "text/plain",
};

/// An error in UWebASR's plaintext format.
#[derive(ToSchema)]
#[schema(as = UWebAsrError, value_type = String, example = "# 400 Unknown format")]
pub struct UwErrorText(#[allow(dead_code)] String);

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let response = ResponseBuilder::new()
            .description(self.description)
            .content(
                self.content_type,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name((self.schema)())))
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
        crate::faces::trd::audio::audio,
        crate::faces::console::data::me,
        crate::faces::console::data::batches,
        crate::faces::console::data::files,
        crate::faces::trd::audiofile::list_all,
        crate::faces::trd::audiofile::list_batch,
        crate::faces::trd::audiofile::create_file,
        crate::faces::trd::audiofile::create_batch,
        crate::faces::trd::audiofile::delete_file,
        crate::faces::trd::audiofile::delete_batch,
        crate::faces::trd::upload::upload,
        crate::faces::trd::recognize::recognize,
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
        crate::faces::trd::auth::create_key,
        crate::faces::trd::auth::list_keys,
        crate::faces::trd::auth::revoke_key,
        crate::faces::trd::auth::delete_user,
        crate::faces::trd::auth::read_audit,
    ),
    components(schemas(ErrorBody, crate::faces::trd::query::QueryCollection)),
    modifiers(&TRD_ERRORS, &SecuritySchemes),
    tags(
        (name = "audiofile", description = "Records, uploads, registration and deletion"),
        (name = "transcription", description = "Start, stop, reset, status and results"),
        (name = "query", description = "Raw records as newline-delimited JSON"),
        (name = "webhook", description = "Callback targets"),
        (name = "operations", description = "Health and metrics"),
        (name = "auth", description = "API keys, users and the audit trail (admin)"),
        (name = "console", description = "What the operator console reads beside the routes above"),
    )
)]
struct ApiDoc;

/// The faces served at the root: other services' identity routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::faces::deepspeech::register,
        crate::faces::deepspeech::register_v1,
        crate::faces::deepspeech::token,
        crate::faces::deepspeech::token_v1,
        crate::faces::deepspeech::refresh,
        crate::faces::deepspeech::refresh_v1,
        crate::faces::nanotrix::access_token,
        crate::faces::nanotrix::ntx_token,
        crate::faces::nanotrix::file::v2t,
    ),
    modifiers(&TRD_ERRORS),
    tags(
        (name = "deepspeech", description = "DeepSpeech REST users, tokens and recognition"),
        (name = "nanotrix", description = "Nanotrix log-in, task tokens and file recognition"),
    )
)]
struct RootDoc;

/// DeepSpeech REST recognition, answering errors in that server's shape.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::faces::deepspeech::stt::stt,
        crate::faces::deepspeech::stt::stt_v1,
    ),
    components(schemas(DsErrorBody)),
    modifiers(&DEEPSPEECH_ERRORS)
)]
struct DeepSpeechDoc;

/// OpenAI's audio transcription API.
#[derive(OpenApi)]
#[openapi(
    paths(crate::faces::openai::transcriptions, crate::faces::openai::models),
    components(schemas(OpenAiErrorBody)),
    modifiers(&OPENAI_ERRORS),
    tags((name = "openai", description = "OpenAI's audio transcriptions and model list"))
)]
struct OpenAiDoc;

/// whisper-asr-webservice's API.
#[derive(OpenApi)]
#[openapi(
    paths(crate::faces::whisper::asr, crate::faces::whisper::detect_language),
    components(schemas(WhisperErrorBody)),
    modifiers(&WHISPER_ERRORS),
    tags((name = "whisper", description = "whisper-asr-webservice's /asr and /detect-language"))
)]
struct WhisperDoc;

/// UWebASR's HTTP API.
#[derive(OpenApi)]
#[openapi(
    paths(crate::faces::uwebasr::post_audio, crate::faces::uwebasr::get_url),
    components(schemas(UwErrorText)),
    modifiers(&UWEBASR_ERRORS),
    tags((name = "uwebasr", description = "UWebASR's HTTP API (POST audio or GET ?url=)"))
)]
struct UWebAsrDoc;

/// The Speechmatics batch jobs API, `/v2` and the appliance's v1 paths.
#[derive(OpenApi)]
#[openapi(
    paths(
        crate::faces::speechmatics::v2::submit,
        crate::faces::speechmatics::v2::get_job,
        crate::faces::speechmatics::v2::list_jobs,
        crate::faces::speechmatics::v2::delete_job,
        crate::faces::speechmatics::v2::transcript,
        crate::faces::speechmatics::legacy::submit,
        crate::faces::speechmatics::legacy::get_job,
        crate::faces::speechmatics::legacy::list_jobs,
        crate::faces::speechmatics::legacy::transcript,
    ),
    components(schemas(SmErrorBody)),
    modifiers(&SPEECHMATICS_ERRORS),
    tags((name = "speechmatics", description = "Speechmatics batch jobs (v2 and the v1 paths)"))
)]
struct SpeechmaticsDoc;

/// The ways to present a credential, required by every operation (Swagger UI's "Authorize"
/// fills them in). Anonymous requests from a trusted network need none.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`trd_…`), an access token (JWT) or the admin token",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "auth_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "auth_token",
                "The same credential as a query parameter (Speechmatics v1); `token` works too",
            ))),
        );
        components.add_security_scheme(
            "ntx_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "ntx-token",
                "A Nanotrix access or task token",
            ))),
        );
        doc.security = Some(
            ["bearer", "auth_token", "ntx_token"]
                .map(|name| SecurityRequirement::new(name, Vec::<String>::new()))
                .to_vec(),
        );
    }
}

/// The document, with the `/trd` mount point in front of every path (the handlers are
/// declared relative to it).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let mut paths: Paths = PathsBuilder::new().build();
    for (path, item) in std::mem::take(&mut doc.paths.paths) {
        paths.paths.insert(format!("/trd{path}"), item);
    }
    doc.paths = paths;
    doc.merge(RootDoc::openapi());
    doc.merge(SpeechmaticsDoc::openapi());
    doc.merge(DeepSpeechDoc::openapi());
    doc.merge(OpenAiDoc::openapi());
    doc.merge(WhisperDoc::openapi());
    doc.merge(UWebAsrDoc::openapi());
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
    fn every_operation_declares_its_success_and_the_error_response() {
        let doc = document();
        assert!(doc.paths.paths.len() >= 20);
        let other_faces = [
            "/users",
            "/api/v1/",
            "/token",
            "/login/",
            "/store/",
            "/v2/jobs",
            "/{version}/user/",
            "/api/stt/",
            "/api/v2/",
            "/v1/audio/",
            "/v1/models",
            "/asr",
            "/detect-language",
        ];
        for (path, item) in &doc.paths.paths {
            assert!(
                path.starts_with("/trd/") || other_faces.iter().any(|p| path.starts_with(p)),
                "{path}"
            );
            for op in [&item.get, &item.post, &item.delete].into_iter().flatten() {
                let ok = ["200", "201"]
                    .iter()
                    .any(|s| op.responses.responses.contains_key(*s));
                assert!(ok, "{path}");
                assert!(op.responses.responses.contains_key("default"), "{path}");
            }
        }
        let schemas = &doc.components.as_ref().expect("components").schemas;
        for shape in [
            "Record",
            "TranscriptResult",
            "BatchStatus",
            "FileStatus",
            "ErrorBody",
        ] {
            assert!(schemas.contains_key(shape), "{shape} is in the document");
        }
        let security = doc.components.as_ref().unwrap().security_schemes.keys();
        let security: Vec<&String> = security.collect();
        assert_eq!(security, ["auth_token", "bearer", "ntx_token"]);
        assert!(doc.security.is_some_and(|s| s.len() == 3));
    }
}
