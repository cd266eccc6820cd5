/** Entry point of this role (placeholder until implemented). @module */

/** Runs the program with its arguments; resolves to the exit code. */
export function main(_args: string[]): Promise<number> {
  console.error("cli: not implemented yet");
  return Promise.resolve(1);
}
