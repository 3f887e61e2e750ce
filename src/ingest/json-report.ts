import type { JsonStream } from "./json-stream";
import type { IngestFormat, NormalizedResult, ReportMetadata, ReportParser, ReportTotals } from "./normalized";

/**
 * What the JSON report parsers share: a streaming tokenizer fed chunk by chunk, results handed
 * back as they complete, metadata and declared totals gathered on the way. A subclass creates
 * `json` in its constructor and may check the finished report in `finish()`.
 */
export abstract class JsonReportParser implements ReportParser {
  abstract readonly format: IngestFormat;
  protected abstract readonly json: JsonStream;
  protected out: NormalizedResult[] = [];
  protected meta: ReportMetadata = {};
  protected declared: ReportTotals | null = null;

  write(chunk: string): NormalizedResult[] {
    this.json.write(chunk);
    return this.drain();
  }

  end(): NormalizedResult[] {
    this.json.end();
    this.finish();
    return this.drain();
  }

  /** Called after the last chunk: throw if the report lacks something it must have. */
  protected finish(): void {}

  metadata(): ReportMetadata {
    return { ...this.meta };
  }

  totals(): ReportTotals | null {
    return this.declared ? { ...this.declared } : null;
  }

  private drain(): NormalizedResult[] {
    const done = this.out;
    this.out = [];
    return done;
  }
}
