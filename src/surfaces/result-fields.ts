import { z } from "@hono/zod-openapi";
import { RESULT_LIMITS, RUN_LIMITS } from "../core/limits";
import { RESULT_STATUSES, STEP_CATEGORIES, STEP_STATUSES, type Step } from "../core/results/results";
import { RUN_STATUSES } from "../core/runs/runs";
import { Count, DurationMs, Label, Text } from "./fields";

/**
 * Schema pieces of runs and results that both the native and the reporting surface use. Their
 * field names are single words (title, status, steps, error…), identical in both casings.
 */
export const RunStatusEnum = z.enum(RUN_STATUSES);
export const ResultStatusEnum = z.enum(RESULT_STATUSES);
export const RunText = Text(RUN_LIMITS.text).nullable().optional();
export const TagList = z.array(Label(RESULT_LIMITS.shortText)).max(RUN_LIMITS.tags);
/** Playwright's --grep patterns: regular expressions, often longer than a tag. */
export const GrepPatternList = z.array(Label(RUN_LIMITS.text)).max(RUN_LIMITS.tags);

export const ResultErrorSchema = z
  .object({
    message: Text(RESULT_LIMITS.errorText).optional(),
    stack: Text(RESULT_LIMITS.errorText).optional(),
    expected: Text(RESULT_LIMITS.errorText).optional(),
    actual: Text(RESULT_LIMITS.errorText).optional(),
  })
  .openapi("ResultError");

export const AnnotationSchema = z
  .object({ type: Label(RESULT_LIMITS.shortText), description: Text(RESULT_LIMITS.annotationText).optional() })
  .openapi("Annotation");

/** One step without its children; the tree is walked iteratively below, never recursively. */
const StepNode = z.object({
  title: Text(RESULT_LIMITS.stepTitleLength),
  category: z.enum(STEP_CATEGORIES).optional(),
  status: z.enum(STEP_STATUSES).optional(),
  duration: DurationMs.optional(),
  error: ResultErrorSchema.nullable().optional(),
  steps: z.array(z.unknown()).optional(),
});

/**
 * A tree of steps (title, category hook|action|assertion|fixture, status, duration, error, and
 * nested `steps`), at most 32 levels deep. Checked with an explicit stack, so a hostile body
 * nested thousands deep is refused with the path of the offending level instead of exhausting
 * the call stack.
 */
export const StepsSchema = z
  .array(z.unknown())
  .transform((roots, ctx): Step[] => {
    const out: Step[] = [];
    const stack: { value: unknown; path: (string | number)[]; depth: number; into: Step[] }[] = [];
    for (let i = roots.length - 1; i >= 0; i--) stack.push({ value: roots[i], path: [i], depth: 1, into: out });
    let count = 0;
    const placed: { into: Step[]; step: Step }[] = [];
    while (stack.length > 0) {
      const { value, path, depth, into } = stack.pop()!;
      if (depth > RESULT_LIMITS.stepDepth) {
        ctx.addIssue({ code: "custom", path, message: `steps must not nest deeper than ${RESULT_LIMITS.stepDepth} levels` });
        return z.NEVER;
      }
      if (++count > RESULT_LIMITS.stepsPerResult) {
        ctx.addIssue({ code: "custom", path: [], message: `must have at most ${RESULT_LIMITS.stepsPerResult} steps in all` });
        return z.NEVER;
      }
      const parsed = StepNode.safeParse(value);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [...path, ...issue.path] } as never);
        return z.NEVER;
      }
      const { steps: children, ...fields } = parsed.data;
      const step: Step = { ...fields, ...(children ? { steps: [] } : {}) };
      placed.push({ into, step });
      if (children) {
        for (let i = children.length - 1; i >= 0; i--) {
          stack.push({ value: children[i], path: [...path, "steps", i], depth: depth + 1, into: step.steps! });
        }
      }
    }
    // Depth-first pre-order: pushing in visit order rebuilds every list in its original order.
    for (const { into, step } of placed) into.push(step);
    return out;
  })
  .openapi({
    type: "array",
    description: "Steps (title, category, status, duration, error, nested `steps`), at most 32 levels deep.",
    example: [{ title: "navigate to /login", category: "action", status: "passed", duration: 820, error: null }],
  });

export const ResultFieldLimits = {
  title: Label(RESULT_LIMITS.titleLength),
  fullTitle: Label(RESULT_LIMITS.fullTitleLength),
  filePath: Text(RESULT_LIMITS.filePathLength).nullable().optional(),
  lineNumber: Count(10_000_000).nullable().optional(),
  retries: Count(1000).optional(),
  attempt: z.number().int().min(1).max(1001).optional(),
  output: Text(RESULT_LIMITS.outputBytes).optional(),
  suitePath: z.array(Label(RESULT_LIMITS.titleLength)).max(RESULT_LIMITS.suiteDepth).optional(),
  automationId: Label(RESULT_LIMITS.shortText).nullable().optional(),
};

/** The fields of a reported result whose names are the same in snake_case and camelCase. */
export const RESULT_WORD_FIELDS = {
  status: ResultStatusEnum,
  duration: DurationMs,
  retries: ResultFieldLimits.retries,
  attempt: ResultFieldLimits.attempt,
  tags: TagList.optional(),
  annotations: z.array(AnnotationSchema).max(RESULT_LIMITS.annotations).optional(),
  error: ResultErrorSchema.nullable().optional(),
  steps: StepsSchema.optional(),
  stdout: ResultFieldLimits.output,
  stderr: ResultFieldLimits.output,
};
