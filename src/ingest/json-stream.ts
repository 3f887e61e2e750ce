import { Tokenizer, TokenizerError, TokenType, type ParsedTokenInfo } from "@streamparser/json";
import { IngestError, MAX_NESTING_DEPTH, type IngestFormat, type Position } from "./normalized";

export type PathSegment = string | number;
export type ContainerKind = "object" | "array";
export type ValueKind = ContainerKind | "primitive";

/**
 * What to do with a value met inside a walked container: build it whole and hand it over
 * (`capture`), descend into it without building it (`walk`), or let it pass (`skip`).
 */
export type Visit = "capture" | "walk" | "skip";

export interface JsonVisitor {
  /** Called for each value whose parent is walked (and for the root), before it is read. */
  visit(path: readonly PathSegment[], kind: ValueKind): Visit;
  /** A captured value, complete. */
  value(path: readonly PathSegment[], value: unknown): void;
  /** A walked container closed. */
  leave?(path: readonly PathSegment[], kind: ContainerKind): void;
}

interface Frame {
  kind: ContainerKind;
  visit: Visit;
  /** The container being built, for captured ones. */
  built?: Record<string, unknown> | unknown[];
  /** Members read so far; in arrays also the index of the next one. */
  members: number;
  /** Object key waiting for its value. */
  key?: string;
}

const enum Expect {
  Value,
  /** A key or, in an empty object, the closing brace. */
  Key,
  Colon,
  /** A comma or the closing bracket. */
  Separator,
  Done,
}

const TOKEN_NAMES: Record<number, string> = {
  [TokenType.LEFT_BRACE]: "'{'",
  [TokenType.RIGHT_BRACE]: "'}'",
  [TokenType.LEFT_BRACKET]: "'['",
  [TokenType.RIGHT_BRACKET]: "']'",
  [TokenType.COLON]: "':'",
  [TokenType.COMMA]: "','",
  [TokenType.TRUE]: "true",
  [TokenType.FALSE]: "false",
  [TokenType.NULL]: "null",
  [TokenType.STRING]: "a string",
  [TokenType.NUMBER]: "a number",
};

function setMember(target: Record<string, unknown>, key: string, value: unknown): void {
  // A "__proto__" key must become a property, not replace the object's prototype.
  if (key === "__proto__") Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

/**
 * A streaming JSON reader over @streamparser/json's tokenizer that builds only the values a
 * visitor asks for, so a 100 MB report's tests are handed over one by one while the document
 * around them is never assembled. Depth is counted here (never recursed on), and every error
 * names a line and column.
 */
export class JsonStream {
  private readonly tokenizer = new Tokenizer();
  private readonly encoder = new TextEncoder();
  private readonly frames: Frame[] = [];
  private readonly path: PathSegment[] = [];
  private expect = Expect.Value;
  private sawToken = false;
  private failure: IngestError | null = null;
  /** A high surrogate ending one chunk waits for the low surrogate starting the next. */
  private heldSurrogate = "";
  private chunkText = "";
  private chunkStartByte = 0;
  private chunkStartLine = 1;
  private chunkStartColumn = 1;
  private bytesSeen = 0;
  private lastTokenEnd = 0;

  constructor(
    private readonly format: IngestFormat | "unknown",
    private readonly visitor: JsonVisitor,
  ) {
    this.tokenizer.onToken = (token) => this.token(token);
    this.tokenizer.onEnd = () => {};
  }

  write(chunk: string): void {
    if (this.failure) throw this.failure;
    let text = this.heldSurrogate + chunk;
    this.heldSurrogate = "";
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.heldSurrogate = text.slice(-1);
      text = text.slice(0, -1);
    }
    this.feed(text);
  }

  private feed(text: string): void {
    if (text === "") return;
    const bytes = this.encoder.encode(text);
    this.chunkText = text;
    this.chunkStartByte = this.bytesSeen;
    try {
      this.tokenizer.write(bytes);
    } catch (err) {
      throw this.fail(err);
    }
    this.bytesSeen += bytes.byteLength;
    this.advanceLineColumn(text);
  }

  /** Throws unless exactly one complete document was read. */
  end(): void {
    if (this.failure) throw this.failure;
    // A lone high surrogate at the very end: encoded on its own it becomes U+FFFD.
    this.feed(this.heldSurrogate);
    this.heldSurrogate = "";
    try {
      this.tokenizer.end();
    } catch (err) {
      throw this.fail(err);
    }
    if (!this.sawToken) throw this.fail(IngestError.empty(this.format));
    if (this.expect !== Expect.Done) {
      const open = this.frames.at(-1);
      const problem = open ? `the report ends inside an unclosed ${open.kind}` : "the report ends before its value is complete";
      throw this.fail(IngestError.malformed(this.format, "JSON", problem, this.endPosition()));
    }
  }

  /** Where the last token ended: what a visitor's error about the value just read should name. */
  position(): Position {
    return this.positionOfByte(this.lastTokenEnd);
  }

  get depth(): number {
    return this.frames.length;
  }

  /** Errors of the visitor pass through; the tokenizer's become an IngestError with a position. */
  private fail(err: unknown): unknown {
    if (err instanceof IngestError) this.failure = err;
    else if (err instanceof TokenizerError) this.failure = this.tokenizerError(err);
    else return err;
    return this.failure;
  }

  private tokenizerError(err: TokenizerError): IngestError {
    const message = err.message;
    const unexpected = /^Unexpected "([\s\S])" at chunk position "\d+" \(absolute position "(\d+)"\)/.exec(message);
    if (unexpected) {
      const char = unexpected[1]!;
      const printable = char >= " " && char <= "~" ? `'${char}'` : `byte 0x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
      return IngestError.malformed(this.format, "JSON", `unexpected character ${printable}`, this.positionOfByte(Number(unexpected[2])));
    }
    if (/ended in the middle of a token/.test(message)) {
      return IngestError.malformed(this.format, "JSON", "the report ends in the middle of a value", this.endPosition());
    }
    return IngestError.malformed(this.format, "JSON", message, this.endPosition());
  }

  private token(info: ParsedTokenInfo): void {
    this.sawToken = true;
    this.lastTokenEnd = info.offset + 1;
    const { token } = info;
    switch (this.expect) {
      case Expect.Value:
        if (token === TokenType.LEFT_BRACE || token === TokenType.LEFT_BRACKET) {
          this.open(token === TokenType.LEFT_BRACE ? "object" : "array", info);
          return;
        }
        if (token === TokenType.RIGHT_BRACKET) {
          const top = this.frames.at(-1);
          if (top?.kind === "array" && top.members === 0) {
            this.path.pop();
            this.close();
            return;
          }
        }
        if (isPrimitive(token)) {
          this.primitive(info.value);
          return;
        }
        break;
      case Expect.Key: {
        const top = this.frames.at(-1)!;
        if (token === TokenType.STRING) {
          top.key = info.value as string;
          this.path.push(top.key);
          this.expect = Expect.Colon;
          return;
        }
        if (token === TokenType.RIGHT_BRACE && top.members === 0) {
          this.close();
          return;
        }
        break;
      }
      case Expect.Colon:
        if (token === TokenType.COLON) {
          this.expect = Expect.Value;
          return;
        }
        break;
      case Expect.Separator: {
        const top = this.frames.at(-1)!;
        if (token === TokenType.COMMA) {
          if (top.kind === "array") {
            this.path.push(top.members);
            this.expect = Expect.Value;
          } else {
            this.expect = Expect.Key;
          }
          return;
        }
        if ((token === TokenType.RIGHT_BRACE && top.kind === "object") || (token === TokenType.RIGHT_BRACKET && top.kind === "array")) {
          this.close();
          return;
        }
        break;
      }
      case Expect.Done:
        throw IngestError.malformed(this.format, "JSON", `unexpected ${TOKEN_NAMES[token] ?? "data"} after the end of the document`, this.positionOfByte(info.offset));
    }
    throw IngestError.malformed(this.format, "JSON", `unexpected ${TOKEN_NAMES[token] ?? "token"}`, this.positionOfByte(info.offset));
  }

  /** How the value about to be read is handled: inherited inside captured or skipped containers. */
  private visitFor(kind: ValueKind): Visit {
    const parent = this.frames.at(-1);
    if (!parent || parent.visit === "walk") return this.visitor.visit(this.path, kind);
    return parent.visit;
  }

  private open(kind: ContainerKind, info: ParsedTokenInfo): void {
    if (this.frames.length >= MAX_NESTING_DEPTH) {
      const at = this.positionOfByte(info.offset);
      throw new IngestError(`The report nests deeper than ${MAX_NESTING_DEPTH} levels${describeAt(at)}.`, {
        format: this.format,
        reason: "too_deep",
        ...at,
      });
    }
    const visit = this.visitFor(kind);
    const frame: Frame = { kind, visit, members: 0 };
    if (visit === "capture") {
      frame.built = kind === "object" ? {} : [];
      this.attach(frame.built);
    }
    this.frames.push(frame);
    if (kind === "array") {
      this.path.push(0);
      this.expect = Expect.Value;
    } else {
      this.expect = Expect.Key;
    }
  }

  private primitive(value: unknown): void {
    const visit = this.visitFor("primitive");
    const parent = this.frames.at(-1);
    if (visit === "capture") {
      if (parent?.visit === "capture") this.attach(value);
      else this.visitor.value(this.path, value);
    }
    this.afterValue();
  }

  /** Puts a value into the captured container it belongs to. */
  private attach(value: unknown): void {
    const parent = this.frames.at(-1);
    if (!parent?.built) return;
    if (Array.isArray(parent.built)) parent.built.push(value);
    else setMember(parent.built, parent.key!, value);
  }

  private close(): void {
    const frame = this.frames.pop()!;
    const parent = this.frames.at(-1);
    if (frame.visit === "capture" && parent?.visit !== "capture") this.visitor.value(this.path, frame.built);
    else if (frame.visit === "walk") this.visitor.leave?.(this.path, frame.kind);
    this.afterValue();
  }

  /** A value ended: back to its container's separator, or the document is complete. */
  private afterValue(): void {
    const parent = this.frames.at(-1);
    if (!parent) {
      this.expect = Expect.Done;
      return;
    }
    parent.members++;
    this.path.pop();
    this.expect = Expect.Separator;
  }

  private advanceLineColumn(text: string): void {
    let newline = text.indexOf("\n");
    if (newline === -1) {
      this.chunkStartColumn += text.length;
      return;
    }
    let last = newline;
    while (newline !== -1) {
      this.chunkStartLine++;
      last = newline;
      newline = text.indexOf("\n", newline + 1);
    }
    this.chunkStartColumn = text.length - last;
  }

  /** Line and column of a byte offset; exact within the chunk being read, else the offset alone. */
  private positionOfByte(offset: number): Position {
    if (offset < this.chunkStartByte) return { offset };
    let byte = this.chunkStartByte;
    let line = this.chunkStartLine;
    let column = this.chunkStartColumn;
    const text = this.chunkText;
    for (let i = 0; i < text.length && byte < offset; i++) {
      const code = text.charCodeAt(i);
      if (code === 0x0a) {
        line++;
        column = 1;
      } else {
        column++;
      }
      if (code < 0x80) byte += 1;
      else if (code < 0x800) byte += 2;
      else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        byte += 4;
        column++;
        i++;
      } else byte += 3;
    }
    return { line, column, offset };
  }

  private endPosition(): Position {
    return { line: this.chunkStartLine, column: this.chunkStartColumn, offset: this.bytesSeen };
  }
}

function describeAt(at: Position): string {
  if (at.line !== undefined && at.column !== undefined) return ` at line ${at.line}, column ${at.column}`;
  return at.offset !== undefined ? ` at offset ${at.offset}` : "";
}

function isPrimitive(token: TokenType): boolean {
  return (
    token === TokenType.STRING ||
    token === TokenType.NUMBER ||
    token === TokenType.TRUE ||
    token === TokenType.FALSE ||
    token === TokenType.NULL
  );
}
