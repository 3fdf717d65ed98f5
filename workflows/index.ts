/** Every workflow the Baton worker registers. Deterministic code only (see docs/architecture.md). */
export { researchBatch, researchSubtask, researchTask } from './research';
