/**
 * The normalize stage's CPU slots: the shared counting semaphore (`common/worker/slots.ts`,
 * also used by ingest's verifying decode).
 * @module
 */
export { Slots } from "../../common/worker/slots.ts";
