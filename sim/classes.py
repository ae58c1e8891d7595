"""Instruction classes: the single place that maps capstone instruction names to the
classes every per-class count, cost and feature column uses. Pure (no capstone import).

Kept apart from :mod:`tinymeter.sim.blocks` so the decoders that need a class
(``decode``, ``hazards``) sit below the block analysis that uses them.
"""

from __future__ import annotations

#: Instruction classes, in column order of every per-class array.
CLASSES: tuple[str, ...] = (
    "alu", "mul", "mac", "mul64", "load", "store", "load_multiple", "store_multiple",
    "branch", "divide", "vfp", "other",
)
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# capstone canonical instruction names (``insn_name()``: no condition, no .w, no "s").
_CLASS_OF_NAMES: dict[str, frozenset[str]] = {
    "alu": _names("""
        adc add addw adr and asr bfc bfi bic clz cmn cmp eor lsl lsr mov movs movt movw mvn
        neg orn orr rbit rev rev16 revsh ror rrx rsb sbc sbfx ssat sub subw sxtab sxtah sxtb
        sxth teq tst ubfx usat uxtab uxtah uxtb uxth"""),
    "mul": _names("mul mla mls"),
    # ARMv7E-M DSP extension: SIMD, saturating and halfword multiply-accumulate.
    "mac": _names("""
        smlabb smlabt smlatb smlatt smlad smladx smlawb smlawt smlsd smlsdx smmla smmlar
        smmls smmlsr smmul smmulr smuad smuadx smulbb smulbt smultb smultt smulwb smulwt
        smusd smusdx sxtb16 sxtab16 uxtb16 uxtab16 sadd16 sadd8 sasx ssax ssub16 ssub8
        uadd16 uadd8 uasx usax usub16 usub8 qadd qadd16 qadd8 qasx qdadd qdsub qsax qsub
        qsub16 qsub8 uqadd16 uqadd8 uqasx uqsax uqsub16 uqsub8 shadd16 shadd8 shasx shsax
        shsub16 shsub8 uhadd16 uhadd8 uhasx uhsax uhsub16 uhsub8 ssat16 usat16 pkhbt pkhtb
        sel usad8 usada8"""),
    "mul64": _names("""
        smull umull smlal umlal umaal smlalbb smlalbt smlaltb smlaltt smlald smlaldx smlsld
        smlsldx"""),
    "load": _names("""
        ldr ldrb ldrh ldrsb ldrsh ldrd ldrt ldrbt ldrht ldrsbt ldrsht ldrex ldrexb ldrexh
        lda ldab ldah ldaex ldaexb ldaexh pld pli"""),
    "store": _names("""
        str strb strh strd strt strbt strht strex strexb strexh stl stlb stlh stlex stlexb
        stlexh"""),
    # VLDM/VSTM/VPUSH/VPOP move registers like LDM/STM: Cortex-M4 TRM table 7-1, 1 + N
    # (N single-precision registers; a double counts 2)
    "load_multiple": _names("ldm ldmdb pop vldmia vldmdb vpop"),
    "store_multiple": _names("stm stmdb push vstmia vstmdb vpush"),
    "branch": _names("b bl blx bx cbz cbnz tbb tbh bxns blxns"),
    "divide": _names("sdiv udiv"),
}
_CLASS_OF: dict[str, int] = {
    name: CLASS_INDEX[cls] for cls, names in _CLASS_OF_NAMES.items() for name in names
}


def classify(name: str) -> int:
    """Class index of a capstone instruction name (``insn_name()``)."""
    cls = _CLASS_OF.get(name)
    if cls is not None:
        return cls
    if name.startswith("v"):
        return CLASS_INDEX["vfp"]
    return CLASS_INDEX["other"]
