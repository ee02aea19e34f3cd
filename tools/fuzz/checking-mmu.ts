/**
 * The differential fuzzer's checking processor: an Mmu whose translate()
 * reports every result to an observer (the TLB-vs-walk check), built by the
 * backend through MachineConfig.newMmu. The observer is set after boot, so
 * boot's own accesses are not checked. `defect` lets a test make the machine
 * wrong on purpose (underneath the check) to prove the check can fail.
 */
import { Mmu, type MmuOptions } from '../../emulator/mmu.js';

export type TranslateObserver = (mmu: Mmu, va: number, acc: number, result: number) => void;

export class CheckingMmu extends Mmu {
  observer: TranslateObserver | null = null;
  /** A deliberate defect applied to every result before it is observed (tests only). */
  defect: ((va: number, acc: number, result: number) => number) | null = null;

  constructor(opts: MmuOptions) {
    super(opts);
  }

  override translate(va: number, acc: number): number {
    let r = super.translate(va, acc);
    if (this.defect !== null) r = this.defect(va, acc, r);
    if (this.observer !== null) this.observer(this, va, acc, r);
    return r;
  }
}
