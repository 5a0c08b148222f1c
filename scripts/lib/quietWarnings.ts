/**
 * Imported first by the CLIs: hides Node's one-line "SQLite is an experimental feature" warning
 * (node:sqlite is stable enough for the worker's state; the warning would confuse operators). Every
 * other warning is still printed.
 */
const original = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const text = typeof warning === "string" ? warning : warning.message;
  if (/SQLite is an experimental feature/.test(text)) return;
  return (original as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

export {};
