// Real leading bytes of each artifact format, written out here rather than taken from the code
// under test (src/core/artifacts/types.ts), for the unit tests and the HTTP tests alike.
export const latin1 = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));
export const bytes = (...parts: (number | string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === "string" ? latin1(p) : typeof p === "number" ? [p] : p)));
export const le32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];

export const PNG = bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0, 0, 0, 0x0d], "IHDR", [0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
export const JPEG = bytes([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10], "JFIF", [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
export const GIF87 = bytes("GIF87a", [1, 0, 1, 0, 0x80, 0, 0]);
export const GIF89 = bytes("GIF89a", [1, 0, 1, 0, 0x80, 0, 0]);
export const WEBP = bytes("RIFF", le32(26), "WEBP", "VP8L", le32(13), [0x2f, 0, 0, 0, 0x10]);
export const AVI = bytes("RIFF", le32(2048), "AVI ", "LIST", le32(192), "hdrlavih");
export const EBML_CHILDREN = (docType: string): number[] => [
  ...[0x42, 0x86, 0x81, 0x01], // EBMLVersion 1
  ...[0x42, 0xf7, 0x81, 0x01], // EBMLReadVersion 1
  ...[0x42, 0xf2, 0x81, 0x04], // EBMLMaxIDLength 4
  ...[0x42, 0xf3, 0x81, 0x08], // EBMLMaxSizeLength 8
  ...[0x42, 0x82, 0x80 | docType.length, ...latin1(docType)], // DocType
  ...[0x42, 0x87, 0x81, 0x04], // DocTypeVersion
  ...[0x42, 0x85, 0x81, 0x02], // DocTypeReadVersion
];
export const ebmlFile = (docType: string): Uint8Array => {
  const children = EBML_CHILDREN(docType);
  return bytes([0x1a, 0x45, 0xdf, 0xa3, 0x80 | children.length], children, [0x18, 0x53, 0x80, 0x67, 0x01]);
};
export const WEBM = ebmlFile("webm");
export const MKV = ebmlFile("matroska");
export const MP4 = bytes([0, 0, 0, 0x20], "ftyp", "isom", [0, 0, 2, 0], "isomiso2avc1mp41", [0, 0, 0, 8], "free");
export const MOV = bytes([0, 0, 0, 0x14], "ftyp", "qt  ", [0, 0, 2, 0], "qt  ", [0, 0, 0, 8], "wide");
export const AVIF = bytes([0, 0, 0, 0x1c], "ftyp", "avif", [0, 0, 0, 0], "avifmif1miaf");
export const ZIP = bytes("PK", [3, 4, 0x14, 0, 0, 0, 8, 0], new Array<number>(18).fill(0), [9, 0, 0, 0], "trace.json");
export const EMPTY_ZIP = bytes("PK", [5, 6], new Array<number>(18).fill(0));
export const HTML = bytes("<!DOCTYPE html><html><head><title>not a png</title></head></html>");

