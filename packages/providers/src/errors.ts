/** A provider failure with a stable code and a hint that says what to do next. */
export class ProviderError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ProviderError';
  }

  toBody(): { error: { code: string; message: string; hint: string; details?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        hint: this.hint,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}
