/**
 * The same task without Temporal, for the side-by-side figures:
 *
 * - `Promise.all`: the eight steps in parallel, then the report; state in memory only, so a crash
 *   loses the task (no durability at all: the floor any orchestrator is measured against);
 * - LangGraph.js with its SQLite checkpointer: a graph that fans the steps out with `Send`, joins
 *   them in the report node, and checkpoints its state to a file after every super-step (durable
 *   state on disk, resumable by thread id, in one process).
 *
 * Both send exactly the requests Baton's activities send (see workload.ts).
 */
import type Anthropic from '@anthropic-ai/sdk';
import { Annotation, END, Send, START, StateGraph } from '@langchain/langgraph';
import { SqliteSaver } from '@langchain/langgraph-checkpoint-sqlite';
import type { PlanStep } from '../config/schema';
import { callStep, callSynthesis, type StepOutput, type Workload } from './workload';

/** One task, Promise.all style. */
export async function promiseAllTask(client: Anthropic, workload: Workload): Promise<string> {
  const results = await Promise.all(workload.standardPlan.steps.map((s) => callStep(client, workload, s)));
  return callSynthesis(client, workload, results);
}

const TaskState = Annotation.Root({
  /** The step a `Send` hands to one `step` node; unset in the graph's own state. */
  current: Annotation<PlanStep | undefined>(),
  /** Every step's findings, appended as the parallel `step` nodes finish. */
  results: Annotation<StepOutput[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  report: Annotation<string | undefined>(),
});

/** A compiled LangGraph task graph checkpointing to a SQLite file. */
export interface LangGraphTasks {
  /** Runs one task to its end under `threadId` (the durable identity of its checkpoints). */
  run(threadId: string): Promise<string>;
  /** Checkpoints written so far (rows in the SQLite file). */
  checkpoints(): Promise<number>;
}

export function langGraphTasks(client: Anthropic, workload: Workload, sqliteFile: string): LangGraphTasks {
  const checkpointer = SqliteSaver.fromConnString(sqliteFile);
  const graph = new StateGraph(TaskState)
    .addNode('step', async (state: typeof TaskState.State) => {
      if (!state.current) throw new Error('step node reached without a step');
      return { results: [await callStep(client, workload, state.current)] };
    })
    .addNode('synthesize', async (state: typeof TaskState.State) => ({
      report: await callSynthesis(client, workload, state.results),
    }))
    .addConditionalEdges(START, () =>
      workload.standardPlan.steps.map((s) => new Send('step', { current: s })),
    )
    .addEdge('step', 'synthesize')
    .addEdge('synthesize', END)
    .compile({ checkpointer });
  return {
    async run(threadId) {
      const final = await graph.invoke({}, { configurable: { thread_id: threadId } });
      if (!final.report) throw new Error(`LangGraph thread ${threadId} ended without a report`);
      return final.report;
    },
    async checkpoints() {
      let n = 0;
      for await (const tuple of checkpointer.list({})) {
        if (tuple) n += 1;
      }
      return n;
    },
  };
}
