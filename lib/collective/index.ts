/**
 * Collectives (SPEC section 8): the interface; worker threads over shared memory; child
 * processes over Node's IPC channel; and the transport-neutral hub and replica halves that
 * other transports (gRPC, ZeroMQ, ...) wire up.
 */
export type { AsyncCollective, Collective, SyncCollective } from './collective';
export { abortWorkerGroup, createWorkerGroup, joinWorkerGroup, type JoinOptions, type WorkerCollective, type WorkerGroup, type WorkerGroupOptions } from './worker-group';
export { joinIpcGroup, serveIpcGroup, type IpcCollective } from './ipc';
export { ReductionHub, type HubError, type HubReply } from './hub';
export { RemoteCollective } from './remote';
