// Vite's `?raw` suffix imports a file's text; the fixtures of the ingest tests are read this way.
declare module "*?raw" {
  const text: string;
  export default text;
}
