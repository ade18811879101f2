import { z } from 'zod';

/** Environment lifecycle jobs. Payloads are ids only: handlers re-read the environment row. */
export const EnvironmentJobCatalog = {
  'environment.provision': z.object({ environmentId: z.string().uuid() }),
  'environment.stop': z.object({ environmentId: z.string().uuid() }),
  'environment.start': z.object({ environmentId: z.string().uuid() }),
  'environment.destroy': z.object({ environmentId: z.string().uuid() }),
} as const;
export type EnvironmentJobKind = keyof typeof EnvironmentJobCatalog & string;
