// The project's error: a message that says what went wrong and what to do. The CLI prints it without a stack.
export class UltraError extends Error {
  override name = "UltraError";
}
