/** A failure the CLI explains: message, what to do next, and the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export const EXIT = { error: 1, usage: 2, auth: 3, notFound: 4, unavailable: 5 } as const;
