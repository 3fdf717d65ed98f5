/**
 * The approvals client: connect, ask a task for its status, decide at its gate, list the tasks
 * waiting, follow a task until it ends, and start one. Used by `npm start`, `npm run baton` and
 * the inbox.
 */
export * from './connect';
export * from './decide';
export * from './pending';
export * from './status';
export * from './tasks';
export * from './watch';
export * from './drafts';
