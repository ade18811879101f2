/** Injection tokens. Every constructor parameter names its token: no reliance on decorator metadata. */
export const CONFIG = Symbol('CONFIG');
export const PG_POOL = Symbol('PG_POOL');
export const CLOCK = Symbol('CLOCK');
export const METRICS = Symbol('METRICS');

export interface Clock {
  now(): Date;
}
export const systemClock: Clock = { now: () => new Date() };
