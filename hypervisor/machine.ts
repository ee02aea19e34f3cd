/**
 * The emulated processor a backend runs on, set up from a MachineConfig.
 * Shared by the native and Xen backends: both create the MMU the same way
 * (CPU preset from the cost model); each decides *when* and with which CR4
 * bits paging is turned on.
 *
 * Native: paging is turned on at the guest's first write_cr3, as head.S
 * enables paging right after building the boot page tables (until then the
 * guest runs with paging off and touches memory physically). Under PAE this
 * also avoids loading the PDPTE registers from CR3 = 0 (zeros, i.e. four
 * not-present PDPTEs: harmless, but pointless).
 * Xen: paging is on from the guest's first instruction; the Xen backend calls
 * `enablePaging` itself with its own CR4 settings.
 */
import { Mmu } from '../emulator/mmu.js';
import type { PhysMem } from '../emulator/phys-mem.js';
import { CR0_PE, CR0_PG, CR0_WP, CR4_PAE, CR4_PGE, CR4_PSE, EFER_NXE } from '../emulator/paging-bits.js';
import type { KernelWorkComponent, MachineConfig } from './paravirt-ops.js';
import { CC_KERNEL, CC_PAGE_COPY } from '../emulator/cost-model.js';

/** The MMU (processor + physical memory) for a config: the preset named by `config.cpu` (built by `config.newMmu` when given). */
export function createMmu(config: MachineConfig, mem?: PhysMem): Mmu {
  const opts = mem === undefined ? { cpu: config.cpu } : { cpu: config.cpu, mem };
  return config.newMmu !== undefined ? config.newMmu(opts) : new Mmu(opts);
}

/** Which optional paging features to turn on (all on by default, as Linux does when the CPU has them). */
export interface PagingFeatures {
  /** CR4.PSE: 4 MiB pages in 2-level paging (PAE ignores it for 2 MiB pages). */
  pse?: boolean;
  /** CR4.PGE: global pages. */
  pge?: boolean;
  /** EFER.NXE (PAE only): the XD bit (bit 63) in entries. */
  nx?: boolean;
}

/** The CR4 value for a config: PAE per config, PSE and PGE per `features`. */
export function pagingCr4(config: MachineConfig, features: PagingFeatures = {}): number {
  let cr4 = 0;
  if (config.pae) cr4 |= CR4_PAE;
  if (features.pse ?? true) cr4 |= CR4_PSE;
  if (features.pge ?? true) cr4 |= CR4_PGE;
  return cr4 >>> 0;
}

/**
 * Turn paging on with `cr3` as the first page directory / PDPT (SDM 9.9.1
 * "Switching to Protected Mode" / 4.1.2): EFER.NXE (PAE), CR3, CR4, then
 * CR0.PE|WP|PG. Under PAE the CR0 write loads the PDPTE registers from `cr3`.
 * Throws if the processor raises #GP (a present PDPTE with reserved bits set):
 * that is a bug in whoever built the tables.
 */
export function enablePaging(mmu: Mmu, config: MachineConfig, cr3: number, features: PagingFeatures = {}): void {
  if (config.pae && (features.nx ?? true)) mmu.writeEfer(mmu.cpu.efer | EFER_NXE);
  if (mmu.writeCr3(cr3) === 'GP') throw new Error(`enablePaging: #GP on MOV CR3 0x${(cr3 >>> 0).toString(16)}`);
  if (mmu.writeCr4(pagingCr4(config, features)) === 'GP') throw new Error('enablePaging: #GP on MOV CR4');
  if (mmu.writeCr0(mmu.cpu.cr0 | CR0_PE | CR0_WP | CR0_PG) === 'GP') {
    throw new Error(
      `enablePaging: #GP on MOV CR0 (PG): PDPT at 0x${(cr3 >>> 0).toString(16)} has a present PDPTE with reserved bits set`,
    );
  }
}

/**
 * The processor executing `cycles` of the guest kernel's own work
 * (ParavirtOps.kernel_work): every backend runs the guest's code on the
 * processor the same way, charged to the ledger's `page_copy` or `kernel`.
 */
export function chargeKernelWork(mmu: Mmu, cycles: number, component: KernelWorkComponent): void {
  mmu.charge(cycles, component === 'page_copy' ? CC_PAGE_COPY : CC_KERNEL);
}
