/** Every workflow the Baton worker registers. Deterministic code only (see ARCHITECTURE.md). */
export { researchBatch, researchSubtask, researchTask } from './research';
