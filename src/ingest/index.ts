import { CtrfParser } from "./ctrf";
import { JUnitParser } from "./junit";
import { NativeParser } from "./native";
import type { IngestFormat, ReportParser } from "./normalized";
import { PlaywrightParser } from "./playwright";

export { detectFormat, SNIFF_BYTES } from "./sniff";
export {
  INGEST_FORMATS,
  IngestError,
  MAX_NESTING_DEPTH,
  type Attachment,
  type IngestErrorDetails,
  type IngestFormat,
  type NormalizedResult,
  type ReportMetadata,
  type ReportParser,
  type ReportTotals,
} from "./normalized";

/** A fresh parser for one report of the given format. */
export function createParser(format: IngestFormat): ReportParser {
  switch (format) {
    case "junit":
      return new JUnitParser();
    case "playwright":
      return new PlaywrightParser();
    case "ctrf":
      return new CtrfParser();
    case "native":
      return new NativeParser();
  }
}
