/** Every workflow the Baton worker registers. Deterministic code only (see ARCHITECTURE.md). */
export { researchSubtask, researchTask } from './research';
