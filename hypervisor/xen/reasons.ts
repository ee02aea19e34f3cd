/**
 * Xen's refusal reasons, worded as Xen 3.1.0 words them in its MEM_LOG
 * lines (xen/arch/x86/mm.c), in one place so the hypervisor model, the
 * guest-side ops, the docs and the hostile-guest tests agree on the text.
 *
 * Xen logs a chain of lines for one refused operation, innermost first
 * ("PAE L3 3rd slot is shared", "Failure in alloc_l3_table: entry 4",
 * "Error while pinning mfn 1234"). The model keeps the whole chain in
 * `XenRefusal.log`; the refusal's `reason` is the first (innermost) line,
 * the one naming the rule that was broken, and `rule` is that line's
 * template with the numbers elided (the key the statistics count by).
 *
 * Numbers are printed as Xen prints them: `%lx` (hex, no 0x prefix) unless
 * Xen's format has an explicit 0x.
 *
 * Where Xen 3.1 fails a call without any log line (mod_l3_entry on slot 3,
 * guest_map_l1e finding no L1, vm_assist), the text starts with "(no log
 * line)" and names the function: the refusal is Xen's, the words are the
 * model's. The table in docs/hypervisor.md lists every refusal.
 */
import { HypervisorRefusal } from '../types.js';
import { GUEST_DOMID } from './abi.js';

/** One MEM_LOG line: its template (numbers elided) and its text. */
export interface LogLine {
  readonly rule: string;
  readonly text: string;
}

/** Xen's `%lx`: hexadecimal without a prefix (the project's `0x` form is emulator/hex.ts). */
export const lx = (n: number): string => (n >>> 0 === n ? n.toString(16) : Math.floor(n).toString(16));

/** Frame type names as printed in "Bad type" (Xen prints the raw type_info word). */
export const TYPE_NAMES: Record<number, string> = { 0: 'none', 1: 'l1', 2: 'l2', 3: 'l3', 4: 'l4', 7: 'writable' };
export function typeName(type: number, xenL2: boolean): string {
  return (TYPE_NAMES[type] ?? `type${type}`) + (xenL2 ? '|pae_xen_l2' : '');
}

const line = (rule: string, text: string): LogLine => ({ rule, text });

export const R = {
  badL1Flags: (bits: number) => line('Bad L1 flags …', `Bad L1 flags ${lx(bits)}`),
  badL2Flags: (bits: number) => line('Bad L2 flags …', `Bad L2 flags ${lx(bits)}`),
  badL3Flags: (bits: number) => line('Bad L3 flags …', `Bad L3 flags ${lx(bits)}`),
  errorGettingMfn: (mfn: number, pfn: number, entry: string) =>
    line(
      'Error getting mfn … (pfn …) from L1 entry … for dom…',
      `Error getting mfn ${lx(mfn)} (pfn ${pfn < 0 ? 'ffffffff' : lx(pfn)}) from L1 entry ${entry} for dom${GUEST_DOMID}`,
    ),
  ioSpace: (mfn: number) =>
    line('Non-privileged attempt to map I/O space …', `Non-privileged attempt to map I/O space ${lx(mfn).padStart(8, '0')}`),
  badType: (saw: string, exp: string, mfn: number, pfn: number) =>
    line(
      'Bad type (saw … != exp …) for mfn … (pfn …)',
      `Bad type (saw ${saw} != exp ${exp}) for mfn ${lx(mfn)} (pfn ${pfn < 0 ? 'ffffffff' : lx(pfn)})`,
    ),
  errorValidating: (mfn: number, pfn: number, type: string) =>
    line(
      'Error while validating mfn … (pfn …) for type …',
      `Error while validating mfn ${lx(mfn)} (pfn ${pfn < 0 ? 'ffffffff' : lx(pfn)}) for type ${type}`,
    ),
  noPageRef: (mfn: number) => line('Could not get page ref for pfn …', `Could not get page ref for pfn ${lx(mfn)}`),
  allocFailure: (level: 1 | 2 | 3, entry: number) =>
    line(`Failure in alloc_l${level}_table: entry …`, `Failure in alloc_l${level}_table: entry ${entry}`),
  l3SlotShared: () => line('PAE L3 3rd slot is shared', 'PAE L3 3rd slot is shared'),
  pgdAbove4G: (mfn: number) =>
    line('PAE pgd must be below 4GB', `PAE pgd must be below 4GB (0x${lx(mfn)} >= 0x100000)`),
  illegalL2Update: (maddr: number) =>
    line('Illegal L2 update attempt in Xen-private area …', `Illegal L2 update attempt in Xen-private area ${lx(maddr)}`),
  /**
   * mod_l3_entry refuses an update of slot 3 without a log line in Xen 3.1
   * (the hypercall just fails): the text says so and names the function.
   */
  l3Slot3Update: (maddr: number) =>
    line(
      '(no log line) mod_l3_entry: update of PAE L3 slot 3 refused …',
      `(no log line) mod_l3_entry: update of PAE L3 slot 3 refused at ${lx(maddr)}`,
    ),
  errorPinning: (mfn: number) => line('Error while pinning mfn …', `Error while pinning mfn ${lx(mfn)}`),
  alreadyPinned: (mfn: number) => line('Mfn … already pinned', `Mfn ${lx(mfn)} already pinned`),
  notPinned: (mfn: number) => line('Mfn … not pinned', `Mfn ${lx(mfn)} not pinned`),
  badDomain: (mfn: number) => line('Mfn … bad domain', `Mfn ${lx(mfn)} bad domain (dom=xen)`),
  newBaseptr: (mfn: number) =>
    line('Error while installing new baseptr …', `Error while installing new baseptr ${lx(mfn)}`),
  normalUpdateNoPage: () => line('Could not get page for normal update', 'Could not get page for normal update'),
  machphysNoPage: () => line('Could not get page for mach->phys update', 'Could not get page for mach->phys update'),
  invalidUpdateCmd: (cmd: number) => line('Invalid page update command …', `Invalid page update command ${lx(cmd)}`),
  invalidExtCmd: (cmd: number) => line('Invalid extended pt command …', `Invalid extended pt command 0x${lx(cmd)}`),
  ptwrBadAccess: (cr2: number, addr: number, bytes: number) =>
    line('Bad ptwr access (cr2=…, addr=…, bytes=…)', `Bad ptwr access (cr2=${lx(cr2)}, addr=${lx(addr)}, bytes=${bytes})`),
  /** A warning, not a refusal: ptwr_emulated_update clears P of a half-written PAE pte and goes on. */
  ptwrFixup: (entry: string) =>
    line('ptwr_emulate: fixing up invalid PAE PTE …', `ptwr_emulate: fixing up invalid PAE PTE ${entry}`),
  ptwrCouldNotGet: () => line('ptwr_emulate: could not get_page_from_l1e()', 'ptwr_emulate: could not get_page_from_l1e()'),
  /** do_update_va_mapping: guest_map_l1e found no L1 for the address; Xen 3.1 returns -EINVAL without a log line. */
  uvmNoL1: (va: number) =>
    line(
      '(no log line) update_va_mapping: no L1 maps the address …',
      `(no log line) update_va_mapping: no L1 maps the address ${lx(va)}`,
    ),
  // ---- refusals of the guest-side Xen port (the interface cannot express the request) ----
  pgdNotAtOffset0: (gpa: number) =>
    line(
      'pgd not at offset 0 of its own frame …',
      `pgd not at offset 0 of its own frame: 0x${lx(gpa)} (Xen types whole frames; a base pointer is an mfn)`,
    ),
  /** Not a Xen message: the failure pvmmu inject --refuse-hypercall provokes (Xen out of memory part-way). */
  injectedMmuUpdate: (i: number, n: number) =>
    line(
      'Injected mmu_update failure (out of memory) at request … of …',
      `Injected mmu_update failure (out of memory) at request ${i} of ${n}: ${i} done, the rest not applied`,
    ),
  /** vm_assist (xen/common/domain.c) returns -EINVAL for a type above MAX_VMASST_TYPE (3) without a log line. */
  vmAssistBadType: (type: number) =>
    line('(no log line) vm_assist: type above MAX_VMASST_TYPE …', `(no log line) vm_assist: type ${type} above MAX_VMASST_TYPE (3)`),
  /** vm_assist returns -ENOSYS for a command other than enable/disable, without a log line. */
  vmAssistBadCmd: (cmd: number) =>
    line('(no log line) vm_assist: unknown command …', `(no log line) vm_assist: unknown command ${cmd}`),
} as const;

/**
 * A refusal by the Xen model: `reason` is the innermost MEM_LOG line (the
 * rule broken), `log` the whole chain innermost first, `rule` the reason's
 * template (numbers elided).
 */
/**
 * Where each rule lives in Xen 3.1.0 (xen/arch/x86/mm.c unless said) and the
 * page-table level it concerns, for refusal reports (the table in
 * docs/hypervisor.md says the same in prose).
 */
const RULE_FACTS: Record<string, { fn: string; level?: number }> = {
  'Bad L1 flags …': { fn: 'get_page_from_l1e / mod_l1_entry', level: 1 },
  'Bad L2 flags …': { fn: 'get_page_from_l2e / mod_l2_entry', level: 2 },
  'Bad L3 flags …': { fn: 'get_page_from_l3e / mod_l3_entry', level: 3 },
  'Error getting mfn … (pfn …) from L1 entry … for dom…': { fn: 'get_page_from_l1e', level: 1 },
  'Non-privileged attempt to map I/O space …': { fn: 'get_page_from_l1e', level: 1 },
  'Bad type (saw … != exp …) for mfn … (pfn …)': { fn: 'get_page_type' },
  'Error while validating mfn … (pfn …) for type …': { fn: 'get_page_type' },
  'Could not get page ref for pfn …': { fn: 'get_page_from_pagenr' },
  'Failure in alloc_l1_table: entry …': { fn: 'alloc_l1_table', level: 1 },
  'Failure in alloc_l2_table: entry …': { fn: 'alloc_l2_table', level: 2 },
  'Failure in alloc_l3_table: entry …': { fn: 'alloc_l3_table', level: 3 },
  'PAE L3 3rd slot is shared': { fn: 'create_pae_xen_mappings', level: 3 },
  'PAE pgd must be below 4GB': { fn: 'alloc_l3_table', level: 3 },
  'Illegal L2 update attempt in Xen-private area …': { fn: 'mod_l2_entry', level: 2 },
  '(no log line) mod_l3_entry: update of PAE L3 slot 3 refused …': { fn: 'mod_l3_entry', level: 3 },
  'Error while pinning mfn …': { fn: 'do_mmuext_op' },
  'Mfn … already pinned': { fn: 'do_mmuext_op' },
  'Mfn … not pinned': { fn: 'do_mmuext_op' },
  'Mfn … bad domain': { fn: 'do_mmuext_op' },
  'Error while installing new baseptr …': { fn: 'new_guest_cr3' },
  'Could not get page for normal update': { fn: 'do_mmu_update' },
  'Could not get page for mach->phys update': { fn: 'do_mmu_update' },
  'Invalid page update command …': { fn: 'do_mmu_update' },
  'Invalid extended pt command …': { fn: 'do_mmuext_op' },
  'Bad ptwr access (cr2=…, addr=…, bytes=…)': { fn: 'ptwr_emulated_update', level: 1 },
  'ptwr_emulate: could not get_page_from_l1e()': { fn: 'ptwr_emulated_update', level: 1 },
  'ptwr_emulate: fixing up invalid PAE PTE …': { fn: 'ptwr_emulated_update (a warning: the entry is written with P clear)', level: 1 },
  '(no log line) update_va_mapping: no L1 maps the address …': { fn: 'do_update_va_mapping', level: 1 },
  '(no log line) vm_assist: type above MAX_VMASST_TYPE …': { fn: 'vm_assist (xen/common/domain.c)' },
  '(no log line) vm_assist: unknown command …': { fn: 'vm_assist (xen/common/domain.c)' },
  'pgd not at offset 0 of its own frame …': { fn: 'the guest port (not a Xen refusal)' },
  'Injected mmu_update failure (out of memory) at request … of …': { fn: 'do_mmu_update (injected by pvmmu inject)' },
};

/** The frame type a chain names ("for type l2", "exp l1"), or undefined. */
function typeOfChain(log: readonly string[]): string | undefined {
  for (const t of log) {
    const m = /for type (\S+)$/.exec(t) ?? /exp (\S+)\)/.exec(t);
    if (m) return m[1];
  }
  return undefined;
}

export class XenRefusal extends HypervisorRefusal {
  readonly rule: string;
  readonly log: readonly string[];
  /** The Xen 3.1.0 function that refused (the innermost line's). */
  readonly fn: string;
  /** The page-table level concerned (1..3), when the rule names one. */
  readonly level: number | undefined;
  /** The frame type concerned (l1, l2, l3, writable …), when the chain names one. */
  readonly type: string | undefined;
  constructor(lines: readonly LogLine[], op: string, mfn?: number) {
    const first = lines[0] ?? line('Unspecified failure', 'Unspecified failure');
    super(first.text, op, mfn);
    this.rule = first.rule;
    this.log = lines.map((l) => l.text);
    const facts = RULE_FACTS[first.rule];
    this.fn = facts?.fn ?? 'unknown';
    this.type = typeOfChain(this.log);
    this.level = facts?.level ?? (this.type !== undefined && /^l[1-4]/.test(this.type) ? Number(this.type[1]) : undefined);
    if (lines.length > 1) this.message += ` [Xen log: ${this.log.join(' / ')}]`;
    this.name = 'XenRefusal';
  }
}
