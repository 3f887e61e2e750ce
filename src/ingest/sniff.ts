import { UnsupportedMediaType } from "../core/errors";
import { JsonStream, type PathSegment, type ValueKind, type Visit } from "./json-stream";
import { INGEST_FORMATS, IngestError, type IngestFormat } from "./normalized";

/** How much of a body format detection reads: enough for any report's opening keys. */
export const SNIFF_BYTES = 64 * 1024;

const XML_TYPES = /^(?:application|text)\/(?:[\w.+-]+\+)?xml$/;
const JSON_TYPES = /^(?:application|text)\/(?:[\w.+-]+\+)?json$/;
/** Types that say nothing about the body's format: the body decides. */
const NEUTRAL_TYPES = new Set(["", "application/octet-stream", "text/plain"]);

interface JsonShape {
  keys: Set<string>;
  resultsKind?: ValueKind;
  resultsKeys: Set<string>;
}

/**
 * Which parser a report needs, from its Content-Type, its first bytes (up to SNIFF_BYTES) and an
 * optional `?format=` that overrides detection. XML is JUnit; JSON is told apart by its top-level
 * keys, which may come in any order and after a large first value, so they are read with the
 * streaming tokenizer rather than searched for as text.
 *
 * Throws UnsupportedMediaType (415) for a Content-Type no report has, and IngestError (400) for a
 * bad `format`, an empty body, a body that contradicts its Content-Type, or one of no known shape.
 */
export function detectFormat(contentType: string | null | undefined, firstBytes: string | Uint8Array, formatParam?: string | null): IngestFormat {
  if (formatParam !== undefined && formatParam !== null && !(INGEST_FORMATS as readonly string[]).includes(formatParam)) {
    throw new IngestError(`The 'format' query parameter must be one of: ${INGEST_FORMATS.join(", ")}.`, {
      format: "unknown",
      reason: "invalid_value",
      field: "format",
      location: "query",
    });
  }
  const mediaType = (contentType ?? "").split(";", 1)[0]!.trim().toLowerCase();
  const declared = XML_TYPES.test(mediaType) ? "xml" : JSON_TYPES.test(mediaType) ? "json" : NEUTRAL_TYPES.has(mediaType) ? null : undefined;
  if (declared === undefined) {
    throw new UnsupportedMediaType(
      `Unsupported Content-Type '${mediaType}': send a report as application/xml (JUnit) or application/json (Playwright, CTRF, native).`,
      { reason: "unsupported_media_type", contentType: mediaType },
    );
  }
  const text = typeof firstBytes === "string" ? firstBytes.slice(0, SNIFF_BYTES) : new TextDecoder().decode(firstBytes.subarray(0, SNIFF_BYTES), { stream: true });
  const start = text.replace(/^\uFEFF/, "").trimStart();
  if (start === "") throw IngestError.empty((formatParam as IngestFormat | undefined) ?? "unknown");
  if (formatParam) return formatParam as IngestFormat;

  const looks = start.startsWith("<") ? "xml" : start.startsWith("{") ? "json" : null;
  if (looks === null) {
    throw new IngestError("The report is neither XML (JUnit) nor a JSON object (Playwright, CTRF, native).", {
      format: "unknown",
      reason: "unknown_format",
    });
  }
  if (declared !== null && declared !== looks) {
    throw new IngestError(`The body is ${looks === "xml" ? "XML" : "JSON"} but its Content-Type is '${mediaType}'.`, {
      format: "unknown",
      reason: "content_type_mismatch",
    });
  }
  if (looks === "xml") return "junit";
  return jsonFormat(readJsonShape(text));
}

function readJsonShape(text: string): JsonShape {
  const shape: JsonShape = { keys: new Set(), resultsKeys: new Set() };
  const json = new JsonStream("unknown", {
    visit(path: readonly PathSegment[], kind: ValueKind): Visit {
      if (path.length === 0) return "walk";
      if (path.length === 1) {
        const key = String(path[0]);
        shape.keys.add(key);
        if (key === "results") {
          shape.resultsKind = kind;
          return kind === "object" ? "walk" : "skip";
        }
        return "skip";
      }
      if (path.length === 2 && path[0] === "results") shape.resultsKeys.add(String(path[1]));
      return "skip";
    },
    value() {},
  });
  // Only the first bytes are here, so the document is expected to stop short: a syntax error
  // within them is still the report's and is reported with its position.
  json.write(text);
  return shape;
}

function jsonFormat(shape: JsonShape): IngestFormat {
  if (shape.resultsKind === "array") return "native";
  // CTRF's keys inside "results" may lie beyond the bytes read; an object with none of ours is not CTRF.
  if (shape.resultsKind === "object" && (shape.resultsKeys.size === 0 || ["tool", "tests", "summary"].some((k) => shape.resultsKeys.has(k)))) {
    return "ctrf";
  }
  if (shape.keys.has("suites") || shape.keys.has("config")) return "playwright";
  throw new IngestError(
    "Could not tell the JSON report's format: expected Playwright ('config' and 'suites'), CTRF ('results' with 'tool' and 'tests') or native ('results' array) at the top level; or name it with ?format=.",
    { format: "unknown", reason: "unknown_format" },
  );
}
