/**
 * The MMU's tracing hook. When a sink is attached the MMU builds one event per
 * page walk and per flush; with no sink attached the only cost is a
 * null check on the (cold) walk path, never on the TLB-hit path.
 */
import type { AccessKind } from './paging-bits.js';

/** One paging-structure entry read during a walk. */
export interface WalkEntryRead {
  level: 'pdpte' | 'pde' | 'pte';
  /** Physical address of the entry. */
  pa: number;
  /** Entry value as read (64-bit under PAE, 32-bit otherwise). */
  value: bigint;
}

export interface WalkEvent {
  type: 'walk';
  va: number;
  access: AccessKind;
  user: boolean;
  cr3: number;
  entries: WalkEntryRead[];
  /** Physical address on success. */
  pa?: number;
  /** #PF error code on a fault. */
  errorCode?: number;
  /** Cycles the walk cost (entry reads, A/D updates, fault delivery if any). */
  cycles: number;
  /** The MMU cycle clock at the start of the walk. */
  at: number;
}

export interface FlushEvent {
  type: 'flush';
  kind: 'full' | 'non-global' | 'invlpg';
  va?: number;
  cycles: number;
  at: number;
}

export type MmuEvent = WalkEvent | FlushEvent;

export interface TraceSink {
  mmuEvent(e: MmuEvent): void;
}
