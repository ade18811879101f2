import { z } from 'zod';

const count = z.number().int().min(0).nullable().optional();

/** Each field: a number sets it for this user, null returns it to the installation default. */
export const PutQuotasBody = z.strictObject({
  maxEnvironments: count,
  maxTasks: count,
  maxCpus: z.number().positive().max(1024).nullable().optional(),
  maxMemoryMb: z.number().int().positive().nullable().optional(),
  envHoursPerDay: z
    .number()
    .min(0)
    .max(24 * 1000)
    .nullable()
    .optional(),
});
export type PutQuotasBody = z.output<typeof PutQuotasBody>;
