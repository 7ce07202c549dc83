"""Synthesis parameters of PASTA's lesion types: hosts, sizes, attribute priors, appearance.

The type table itself (ids, keys, organ groups, benign/malignant) lives in
:mod:`PASTALib.lesions.lesion_types`; this module only adds what synthesis needs, keyed by the
same ``key``, so the two cannot drift. HU ranges follow SYNTHESIS_REFERENCE.md section 9 and are
sampling ranges, not diagnostic criteria.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Mapping, Optional

from PASTALib.errors import PastaInputError
from PASTALib.lesions import lesion_types
from PASTALib.lesions.vocabulary import SYNTHESIS_VALUES

#: Attribute keys accepted by ``--attr KEY=VALUE`` and their allowed values (:mod:`PASTALib.lesions.vocabulary`).
ATTRIBUTES: dict[str, tuple[str, ...]] = SYNTHESIS_VALUES

#: Aliases users may type (report attribute names and phrases) -> canonical key / value.
KEY_ALIASES = {"surface": "margin", "invasion": "relation", "density variations": "heterogeneity",
               "relationship": "relation"}
VALUE_ALIASES = {"round": "round-like", "punctate": "punctate-nodular", "nodular": "punctate-nodular",
                 "wall": "wall-thickening", "well": "well-defined", "ill": "ill-defined",
                 "close": "close-contact", "contact": "close-contact", "no": "none",
                 "necrotic": "necrotic-core", "calcification": "calcified", "lytic": "hypodense",
                 "sclerotic": "hyperdense"}

Weights = Mapping[str, float]
Range = tuple[float, float]


@dataclass(frozen=True)
class DensityHU:
    """HU of one density class: ``relative`` to the host parenchyma P, ``absolute`` HU, or a
    ``replacement`` of the host tissue: tissue at ``native``/``enhanced`` HU that keeps a share
    ``kept`` of the host tissue's density (a lytic metastasis keeps some trabecular bone)."""

    mode: str  #: "relative", "absolute" or "replacement"
    native: Range
    enhanced: Range
    kept: Range = (0.0, 0.0)  #: replacement: share of the host tissue left in the lesion

    def range(self, enhanced: bool) -> Range:
        return self.enhanced if enhanced else self.native


#: What a published size measures: the longest diameter a reader or surgeon reports, or the
#: equivalent-sphere diameter (6 V / pi)^(1/3) of a segmented mask (the geometric mean of the three axes
#: synthesis draws). The realism benchmark compares each prior with the same measure of the lesions made.
LONG_AXIS = "long axis"
EQUIVALENT_SPHERE = "equivalent sphere"


def equivalent_sphere_diameter_mm(volume_mm3: float) -> float:
    """Diameter of the sphere of this volume (an ellipsoid's is the geometric mean of its axes)."""
    return (6.0 * volume_mm3 / math.pi) ** (1.0 / 3.0)


@dataclass(frozen=True)
class SizePrior:
    """Default lesion diameter, log-normal, fitted to what a published series of real lesions reports
    (the fit and the source are given per type in :data:`SIZE_PRIORS`)."""

    median_mm: float
    log_sd: float  #: SD of ln(diameter)
    source: str
    measure: str = LONG_AXIS  #: :data:`LONG_AXIS` or :data:`EQUIVALENT_SPHERE`

    @classmethod
    def from_quartiles(cls, median: float, p25: float, p75: float, source: str,
                       measure: str = LONG_AXIS) -> "SizePrior":
        return cls(median, (math.log(p75) - math.log(p25)) / 1.349, source, measure)  # IQR of N(0,1)

    @classmethod
    def from_mean_sd(cls, mean: float, sd: float, source: str, measure: str = LONG_AXIS) -> "SizePrior":
        log_var = math.log(1.0 + (sd / mean) ** 2)
        return cls(mean / math.exp(log_var / 2.0), math.sqrt(log_var), source, measure)

    @classmethod
    def from_median_mean(cls, median: float, mean: float, source: str,
                         measure: str = LONG_AXIS) -> "SizePrior":
        return cls(median, math.sqrt(2.0 * math.log(mean / median)), source, measure)

    @classmethod
    def from_cumulative(cls, below: tuple[float, float], above: tuple[float, float], source: str,
                        measure: str = LONG_AXIS) -> "SizePrior":
        """From two points of the cumulative distribution, ``(diameter_mm, share smaller)``: what a
        series reporting only counts per size class gives."""
        (d1, p1), (d2, p2) = below, above
        z1, z2 = NormalDist().inv_cdf(p1), NormalDist().inv_cdf(p2)
        log_sd = (math.log(d2) - math.log(d1)) / (z2 - z1)
        return cls(math.exp(math.log(d1) - z1 * log_sd), log_sd, source, measure)

    def quantile(self, p: float) -> float:
        return self.median_mm * math.exp(self.log_sd * NormalDist().inv_cdf(p))


#: Published size distributions of real lesions, per type (diameter in mm). Types without a usable
#: published distribution keep the uniform ``typical_mm`` range of their SynthSpec, and say so.
SIZE_PRIORS: dict[str, SizePrior] = {
    # LUNA16 (the LIDC-IDRI nodules >= 3 mm accepted by 3 of 4 readers; Setio et al., Med Image Anal 2017;
    # Armato et al., Med Phys 2011): `diameter_mm` of annotations.csv, 1117 of its 1186 rows in the copy
    # read: median 6.4 mm, IQR 5.1-9.7 mm. Tagged long axis: LIDC readers size nodules by their greatest
    # in-plane dimension; how LUNA16 combined the readers into `diameter_mm` was not checked here.
    "lung_tumor": SizePrior.from_quartiles(6.4, 5.1, 9.7, "LUNA16 / LIDC-IDRI nodule diameters"),
    # KiTS23 (Heller et al.; nephrectomy cohort), `radiographic_size` of 482 cases in dataset/kits23.json:
    # median 40 mm, IQR 25-61 mm (pathologic size: median 41, IQR 26-63).
    "kidney_tumor": SizePrior.from_quartiles(40.0, 25.0, 61.0, "KiTS23 radiographic tumour size"),
    # KiTS23 cyst masks, equivalent-sphere diameter of 716 cyst instances: median 12.2 mm, IQR 7.8-19.5 mm
    # (cysts in nephrectomy patients; files over 4 MiB were missing from the copy read, so large cysts
    # may be under-represented).
    "kidney_cyst": SizePrior.from_quartiles(12.2, 7.8, 19.5, "KiTS23 cyst equivalent diameters",
                                           EQUIVALENT_SPHERE),
    # Incidental pancreatic cysts at MRI, largest cyst of 616 patients: median 6 mm, mean 7.4 mm, range
    # 2-24 mm (Lee KS et al., Am J Gastroenterol 2010;105:2079-84).
    "pancreas_cyst": SizePrior.from_median_mean(6.0, 7.4, "incidental pancreatic cysts, Lee et al. 2010"),
    # Distal ureteral stones, largest dimension on non-contrast CT of 41 stones: mean 5.51 mm, SD 2.09, range
    # 2-11.2 mm ("Estimation of size of distal ureteral stones: noncontrast CT scan versus actual size",
    # Urology 2008). Ureteral, not renal, stones: the nearest published CT series found.
    "kidney_stone": SizePrior.from_mean_sd(5.51, 2.09, "distal ureteral stones on CT, Urology 2008"),
    # MCT-LTDiag (Wu XA, Su H, et al., "A multi-phase CT dataset for automated differential diagnosis of
    # liver tumors", Sci Data 2025; doi:10.7910/DVN/S3RW15), meta/meta_info_tumor.csv of its code
    # repository: the segmented index tumour of 421 patients with a malignant liver tumour (HCC 103,
    # intrahepatic cholangiocarcinoma 100, colorectal 103 and breast-cancer 115 liver metastases; the 96
    # haemangiomas left out), equivalent-sphere diameter from the mask volume (InExp_Volume_mm3): median
    # 33.9 mm, IQR 22.2-54.3 mm (largest 3D diameter: median 46 mm). A tertiary-referral series with one
    # tumour of >= 10 mm per patient: small metastases are under-represented (58 % of colorectal liver
    # metastases found at surgery are < 20 mm; van Erkel AR et al., Radiology 2002, PMID 12147835).
    "liver_tumor": SizePrior.from_quartiles(33.9, 22.2, 54.3, "MCT-LTDiag malignant liver tumours (Sci Data 2025)",
                                            EQUIVALENT_SPHERE),
    # PANORAMA public training set (Alves N et al., PANORAMA study protocol, Zenodo 2024,
    # doi:10.5281/zenodo.10599559; labels CC BY-NC 4.0, github.com/DIAGNijmegen/panorama_labels): the 482
    # manual PDAC lesion masks (label 1) of contrast-enhanced CT, equivalent-sphere diameter of the largest
    # lesion per case (478 with one >= 0.05 mL): median 22.9 mm, IQR 17.4-29.5 mm, range 6-107 mm.
    # Measured with Testing/tools/lesion_sizes_from_masks.py.
    "pancreas_tumor": SizePrior.from_quartiles(22.9, 17.4, 29.5, "PANORAMA manual PDAC masks",
                                              EQUIVALENT_SPHERE),
    # Transurethral resections of bladder tumours in NSQIP 2011-2015, 17,839 patients coded by resected
    # tumour size: 44 % small (CPT 52234, 0.5-2 cm), 35 % medium (52235, 2-5 cm), 21 % large (52240, > 5 cm)
    # (Loloi J et al., "In the world of bladder tumors: size does matter", Bladder Cancer, IOS Press,
    # article BLC-200273): a log-normal through 44 % below 20 mm and 79 % below 50 mm, median 23 mm.
    "bladder_cancer": SizePrior.from_cumulative((20.0, 0.44), (50.0, 0.79),
                                                "TURBT tumour size classes, NSQIP (Loloi et al.)"),
    # Gallstones at ultrasound, largest diameter, 1018 patients screened in one centre (Alshoabi S, "Gallstones:
    # site, size, number, prevalence and complications by ultrasonography", Int J Med Imaging 2016;4(6):52-56,
    # doi:10.11648/j.ijmi.20160406.12): 20.77 % below 5 mm, 60.66 % 5-20 mm, 15.30 % above 20 mm (3.27 % not
    # sized): among the sized, 21.5 % below 5 mm and 84.2 % below 20 mm; a log-normal through both, median 9 mm.
    "gallstone": SizePrior.from_cumulative((5.0, 20.77 / 96.73), (20.0, 81.43 / 96.73),
                                           "gallstones at ultrasound, largest diameter (Alshoabi 2016)"),
    # 430 advanced gastric cancers of the lower third resected with D2 lymphadenectomy, maximum tumour diameter
    # of the specimen: mean 4.9 +/- 1.9 cm, median 5.0 cm (Wang HM et al., World J Gastroenterol 2012;18:5470,
    # PMID 23082065). Advanced (not early) cancers of one region: smaller early cancers are under-represented.
    "gastric_cancer": SizePrior.from_mean_sd(49.0, 19.0, "advanced gastric cancers, specimen diameter (WJG 2012)"),
    # ULS23 challenge, ULS23_Radboudumc_Bone (de Grauw MJJ et al., Med Image Anal 2025;102:103525,
    # doi:10.1016/j.media.2025.103525; labels in github.com/DIAGNijmegen/ULS23, annotations/ULS23/novel_data/
    # ULS23_Radboudumc_Bone/labels): 697 bone lesions (sclerotic and lytic) of oncology CTs at Radboudumc, picked
    # from radiology reports and segmented in 3D by a radiologist, one volume of interest each; 686 hold a lesion
    # >= 0.05 mL: equivalent-sphere diameter median 14.9 mm, IQR 10.4-22.0 mm, range 4.6-63 mm. Measured with
    # Testing/tools/lesion_sizes_from_masks.py. Every skeletal site, not the spine alone.
    "bone_metastasis": SizePrior.from_quartiles(14.9, 10.4, 22.0, "ULS23 Radboudumc bone lesion masks",
                                               EQUIVALENT_SPHERE),
    # 166 colorectal resections followed by adjuvant chemotherapy, 2007-2012, histological tumour size: median 35
    # mm, IQR 27-50 mm (Simpson GS et al., "The aetiology of delay to commencement of adjuvant chemotherapy
    # following colorectal resection", Int J Surg Oncol 2014:670212, doi:10.1155/2014/670212, Table 2). Mostly
    # stage III (66 % node-positive), 7 complete responses after neoadjuvant treatment.
    "colorectal_cancer": SizePrior.from_quartiles(35.0, 27.0, 50.0,
                                                  "resected colorectal cancers, histological size (Simpson 2014)"),
}
#: No published size distribution found (not invented): liver cysts, esophageal and gallbladder cancers keep their
#: uniform ranges. Esophageal: only a median with its range, tumour length 40 mm (9-100) at pathology in 71
#: resections (Asian Pac J Cancer Prev, "Impact of tumor length on survival for patients with resected esophageal
#: cancer"); gallbladder: only a mean, 28 mm, of 35 malignant polypoid lesions (Kwon W et al., J Korean Med Sci
#: 2009;24:481); liver cysts: prevalence series without sizes.


@dataclass(frozen=True)
class WallThickness:
    """Published maximal wall thickness of a hollow-organ cancer on CT (mm): a mixture of normal
    components (weight, mean, SD), drawn truncated to what the lesion and the grid allow."""

    components: tuple[tuple[float, float, float], ...]
    source: str

    @property
    def shares(self) -> list[float]:
        total = sum(w for w, _, _ in self.components)
        return [w / total for w, _, _ in self.components]

    @property
    def mean_mm(self) -> float:
        return sum(share * m for share, (_, m, _) in zip(self.shares, self.components))

    def draw(self, rng, low_mm: float, high_mm: float) -> float:
        """One thickness within [low_mm, high_mm] (redrawn, then clipped, when outside)."""
        for _ in range(20):
            _, mean, sd = self.components[int(rng.choice(len(self.components), p=self.shares))]
            value = float(rng.normal(mean, sd))
            if low_mm <= value <= high_mm:
                return value
        return min(max(value, low_mm), high_mm)


#: How thick a wall cancer makes its wall, per type, from CT series (the lesion's size is its extent along the
#: wall; before this, thickness was 0.45 or 0.9 of the lesion's smallest radius, so it followed the extent: a 20 mm
#: thickening was 4.5 mm thick, a 70 mm one always 15.75 mm). Normal walls for comparison: gastric antrum 5.1 +/- 1.6
#: mm, body 2.0 +/- 0.4 mm (153 patients; Pickhardt PJ, Asher DB, AJR 2003;181:973, PMID 14500212); oesophagus
#: over 3 mm in 35 % of 200 chest CTs (Reinig JW et al., AJR 1983;140:931). Gallbladder (mean 21 mm, 17
#: carcinomas, no spread; Chun KA et al., Radiology 1997;203:93) and bladder cancers: no distribution found, they
#: keep the radius rule.
WALL_THICKNESS: dict[str, WallThickness] = {
    # antral wall of gastric cancers at MDCT: 16.64 +/- 7.28 mm in 22 (Tongdee R et al., J Med Assoc Thai
    # 2012;95:1441) and 13.68 +/- 3.27 mm in 60 (J Oncol 2019:8581547, doi:10.1155/2019/8581547): pooled 14.5 +/- 4.9
    "gastric_cancer": WallThickness(((1.0, 14.5, 4.9),), "gastric cancers, antral wall at MDCT (82; 2012, 2019)"),
    # maximal oesophageal wall thickness on CT of 1102 resected squamous-cell cancers by pT stage: pT1 4.9 +/- 2.6,
    # pT2 8.1 +/- 2.3, pT3 12.4 +/- 3.6, pT4 18.6 +/- 4.4 mm (Esophagus 2022;19:269, doi:10.1007/s10388-021-00886-2).
    # The stage shares are not in the abstract read: equal weights (an assumption, said here)
    "esophageal_cancer": WallThickness(((1.0, 4.9, 2.6), (1.0, 8.1, 2.3), (1.0, 12.4, 3.6), (1.0, 18.6, 4.4)),
                                       "oesophageal SCC by pT stage, equal weights (Esophagus 2022)"),
    # bowel-wall thickening of 105 consecutive non-mucinous colorectal carcinomas on CT: 1.94 +/- 0.92 cm (86
    # mucinous: 2.41 +/- 1.19 cm, not used: 10-15 % of cancers); "CT differentiation of mucinous and nonmucinous
    # colorectal carcinoma" (the stored abstract names no journal; we read it as Ko EY et al., AJR 2007)
    "colorectal_cancer": WallThickness(((1.0, 19.4, 9.2),), "non-mucinous colorectal carcinomas on CT (105)"),
}


@dataclass(frozen=True)
class DensityReference:
    """A published density of real lesions of one type, printed beside what synthesis makes (by
    ``Testing/benchmarks/bench_realism.py``) and, where its measure is the one a SynthSpec draws, the
    source of that range (:func:`within_one_sd`)."""

    #: "contrast to organ" (lesion minus surrounding parenchyma), "contrast to wall" (lesion minus the normal wall
    #: of a hollow organ) or "lesion HU"
    measure: str
    phase: str  #: contrast phase of the series
    mean_hu: float
    sd_hu: float
    share: float  #: share of the series' lesions this density describes
    source: str
    density: Optional[str] = None  #: the density class of ours it describes (None: the type's every class)

    def within_one_sd(self) -> Range:
        return (self.mean_hu - self.sd_hu, self.mean_hu + self.sd_hu)


#: Published lesion densities found so far (cysts: the Bosniak fluid range, :data:`SOLID_MIN_HU`).
DENSITY_REFERENCES: dict[str, tuple[DensityReference, ...]] = {
    # 57 pancreatic carcinomas at MDCT (PMID 17961951): 49 hypoattenuating, tumour-to-pancreas contrast in
    # the portal venous phase 40.5 +/- 23.0 HU; 8 isoattenuating (14 %, smaller: 12 vs 30 mm), 7.1 +/- 4.7 HU.
    "pancreas_tumor": (
        DensityReference("contrast to organ", "portal venous", -40.5, 23.0, 49 / 57,
                         "hypoattenuating PDAC, PMID 17961951", "hypodense"),
        DensityReference("contrast to organ", "portal venous", -7.1, 4.7, 8 / 57, "isoattenuating PDAC, PMID 17961951",
                         "isodense"),
    ),
    # Small (<= 4 cm) clear-cell renal cell carcinomas at triphasic MDCT, 23 tumours, 13 hypervascular and 10
    # hypovascular (Urologia Journal, "MDCT in the differentiation of small renal clear cell carcinoma and renal
    # oncocytoma", doi:10.5301/uj.5000256): mean lesion attenuation unenhanced 34.0 +/- 7.1 (hypervascular) and
    # 32.4 +/- 12.0 HU (hypovascular); hypervascular corticomedullary 173.1 +/- 45.2, nephrographic 148.8 +/- 34.3
    # HU. (Homogeneous papillary RCCs, 42 tumours, AJR: unenhanced 14.7-50.7, portal venous 40.8-95.1 HU, ranges only.)
    "kidney_tumor": (
        DensityReference("lesion HU", "unenhanced", 34.0, 7.1, 13 / 23,
                         "hypervascular small ccRCC, doi:10.5301/uj.5000256"),
        DensityReference("lesion HU", "unenhanced", 32.4, 12.0, 10 / 23,
                         "hypovascular small ccRCC, doi:10.5301/uj.5000256"),
        DensityReference("lesion HU", "corticomedullary", 173.1, 45.2, 13 / 23,
                         "hypervascular small ccRCC, doi:10.5301/uj.5000256"),
        DensityReference("lesion HU", "nephrographic", 148.8, 34.3, 13 / 23,
                         "hypervascular small ccRCC, doi:10.5301/uj.5000256"),
    ),
    # 50 upper-urinary-tract stones of 5-10 mm on unenhanced CT, 20 of them in the kidney ("Hounsfield units on
    # computerized tomography predict stone-free rates after extracorporeal shock wave lithotripsy", J Urol):
    # renal stones 558.4 +/- 62.4 HU (SEM, 11 cleared) and 905.1 +/- 61.5 HU (SEM, 9 residual); pooled here
    # (SD = SEM x sqrt(n), with the spread between the groups) to 714 +/- 261 HU.
    "kidney_stone": (
        DensityReference("lesion HU", "unenhanced", 714.0, 261.0, 1.0,
                         "20 renal stones of 5-10 mm, J Urol (HU predict stone-free rates after ESWL)"),
    ),
    # Gallstones scanned in vitro, 30 analysed by CT and infrared spectroscopy (Hickman MS et al., Arch Surg
    # 1986;121:289-291, doi:10.1001/archsurg.1986.01400030043007): cholesterol -87.3 +/- 14.5 HU, pigment 162 +/- 27.6
    # HU. Synthesis draws only stones denser than bile (cholesterol stones at fat density are not drawn).
    "gallstone": (
        DensityReference("lesion HU", "unenhanced", 162.0, 27.6, float("nan"),
                         "pigment gallstones in vitro, Hickman 1986 (doi:10.1001/archsurg.1986.01400030043007)"),
        DensityReference("lesion HU", "unenhanced", -87.3, 14.5, float("nan"),
                         "cholesterol gallstones in vitro, Hickman 1986 (not drawn)"),
    ),
    # 64 resected squamous-cell oesophageal cancers at contrast-enhanced CT: tumour minus normal oesophageal wall
    # 23.86 +/- 10.59 HU (Li R et al., World J Radiol 2012;4:179-185, doi:10.4329/wjr.v4.i4.179). Our wall cancers
    # are drawn against soft tissue (80 HU enhanced), the stand-in for the normal wall.
    "esophageal_cancer": (
        DensityReference("contrast to wall", "contrast-enhanced", 23.9, 10.6, 1.0,
                         "squamous oesophageal cancer minus normal wall, Li 2012 (doi:10.4329/wjr.v4.i4.179)"),
    ),
    # Mean CT density of the bone metastases of 80 patients grouped lytic / mixed / sclerotic ("Clinical and
    # radiological evaluation of patients with lytic, mixed and sclerotic bone metastases from solid
    # tumors", Clin Exp Metastasis 2007).
    "bone_metastasis": (
        DensityReference("lesion HU", "any", 116.3, 40.4, float("nan"),
                         "lytic bone metastases, Clin Exp Metastasis 2007", "hypodense"),
        DensityReference("lesion HU", "any", 444.0, 86.6, float("nan"),
                         "sclerotic bone metastases, Clin Exp Metastasis 2007", "hyperdense"),
    ),
}


@dataclass(frozen=True)
class SynthSpec:
    """What synthesis needs to know about one lesion type."""

    key: str
    kind: str  #: "solid", "cyst", "stone", "wall" (hollow-organ wall) or "bone"
    hosts: tuple[str, ...]  #: TotalSegmentator v2 class names (prefix match with a trailing '*')
    size_mm: Range  #: allowed diameter range per axis
    typical_mm: Range  #: range sampled when no size is given and the type has no SIZE_PRIORS entry
    priors: Mapping[str, Weights]  #: allowed attribute values with sampling weights
    appearance: Mapping[str, DensityHU]  #: density class -> HU
    min_inside: float = 0.80  #: minimum fraction of lesion voxels inside the host organ
    #: relation=close-contact means the lesion bulges out of the organ into the fat around it (up to
    #: about half its volume; never into another organ), as most renal masses do
    exophytic: bool = False
    #: the lesion never fills the renal sinus (the fat and urine inside TotalSegmentator's kidney label)
    spares_renal_sinus: bool = False
    min_hu: float = -10.0  #: floor of a relative target HU (solid tumours are not fat- or water-like)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def type(self) -> lesion_types.LesionType:
        return lesion_types.BY_KEY[self.key]

    @property
    def size_prior(self) -> Optional[SizePrior]:
        return SIZE_PRIORS.get(self.key)

    @property
    def wall_thickness(self) -> Optional[WallThickness]:
        return WALL_THICKNESS.get(self.key)


#: Floor of a solid kidney or pancreas tumour (HU): homogeneous masses of -9 to 20 HU at unenhanced CT
#: are benign cysts (Bosniak classification v2019: Silverman SG et al., Radiology 2019;292:475-488), so a
#: solid tumour drawn at or below 20 HU would read as fluid. Kidney and pancreas masks are fat-diluted
#: at 3 mm (parenchyma 23-28 HU in the native sample), where relative ranges alone fell to water.
SOLID_MIN_HU = 21.0

_MARGIN_SHARP = {"well-defined": 0.9, "ill-defined": 0.1}
_MARGIN_SOFT = {"well-defined": 0.3, "ill-defined": 0.7}
_REL = {"none": 0.6, "close-contact": 0.4}
_SOLID_HET = {"homogeneous": 0.35, "heterogeneous": 0.45, "necrotic-core": 0.2}
_CYST = {"hypodense": DensityHU("absolute", (0.0, 10.0), (0.0, 15.0))}
_CYST_PRIORS = {"shape": {"round-like": 0.6, "cystic": 0.4}, "density": {"hypodense": 1.0},
                "heterogeneity": {"homogeneous": 1.0}, "margin": {"well-defined": 1.0},
                "relation": {"none": 0.8, "close-contact": 0.2}}
_WALL_PRIORS = {"shape": {"wall-thickening": 0.75, "irregular": 0.25},
                "density": {"hyperdense": 0.45, "isodense": 0.35, "hypodense": 0.2},
                "heterogeneity": {"homogeneous": 0.5, "heterogeneous": 0.5},
                "margin": {"well-defined": 0.4, "ill-defined": 0.6}, "relation": _REL}
#: wall tumours: soft tissue, relative to the wall's soft-tissue reference (see host.py). Hand-set; published, medians
#: only (so not in DENSITY_REFERENCES): 86 pT1-2 gastric cancers at 68 (node-negative) and 87.5 HU (node-positive)
#: in the portal venous phase (Wang Z et al., Diagn Interv Radiol 2023;29:228, doi:10.4274/dir.2021.21286), i.e.
#: -12 to +8 HU against our 80 HU; 50 colorectal cancers at 28 HU (11-56) on virtual non-contrast dual-energy
#: images (Ozdeniz I et al., Diagn Interv Radiol 2017;23:251), i.e. -12 HU against our native 40 HU
_WALL_HU = {"isodense": DensityHU("relative", (-4.0, 4.0), (-5.0, 5.0)),
            "hyperdense": DensityHU("relative", (15.0, 30.0), (20.0, 45.0)),
            "hypodense": DensityHU("relative", (-25.0, -12.0), (-35.0, -15.0))}
_STONE_PRIORS = {"shape": {"punctate-nodular": 0.6, "round-like": 0.4}, "density": {"hyperdense": 1.0},
                 "heterogeneity": {"homogeneous": 0.8, "heterogeneous": 0.2},
                 "margin": {"well-defined": 1.0}, "relation": {"none": 1.0}}

_PDAC_HYPO, _PDAC_ISO = DENSITY_REFERENCES["pancreas_tumor"]
_SCLEROTIC = DENSITY_REFERENCES["bone_metastasis"][1]

SPECS: dict[str, SynthSpec] = {s.key: s for s in (
    SynthSpec("lung_tumor", "solid", ("lung_*",), (4.0, 60.0), (10.0, 35.0),
              {"shape": {"round-like": 0.4, "irregular": 0.35, "lobulated": 0.15, "punctate-nodular": 0.1},
               # density of a lung lesion is judged against soft tissue (40 HU), as the report does
               "density": {"isodense": 0.8, "hypodense": 0.2},
               "heterogeneity": {"homogeneous": 0.6, "heterogeneous": 0.3, "calcified": 0.1},
               "margin": _MARGIN_SOFT, "relation": _REL},
              # isodense to soft tissue (40 HU, the report's lung reference) in both phases: an "enhanced"
              # 40-90 HU range put most contrast-phase nodules outside the isodense band the report and
              # the quality gate use, so they were redrawn or failed
              {"isodense": DensityHU("absolute", (28.0, 52.0), (28.0, 52.0)),
               "hypodense": DensityHU("absolute", (-650.0, -350.0), (-650.0, -350.0))},
              min_inside=0.85, min_hu=-700.0, notes=("hypodense = ground-glass opacity",)),
    SynthSpec("liver_tumor", "solid", ("liver",), (5.0, 120.0), (12.0, 50.0),
              {"shape": {"round-like": 0.45, "irregular": 0.35, "lobulated": 0.2},
               "density": {"hypodense": 0.8, "isodense": 0.05, "hyperdense": 0.15},
               "heterogeneity": _SOLID_HET, "margin": {"well-defined": 0.55, "ill-defined": 0.45},
               "relation": _REL},
              {"hypodense": DensityHU("relative", (-30.0, -15.0), (-60.0, -25.0)),
               "isodense": DensityHU("relative", (-4.0, 4.0), (-5.0, 5.0)),
               "hyperdense": DensityHU("relative", (15.0, 30.0), (25.0, 50.0))}),
    SynthSpec("gallbladder_cancer", "wall", ("gallbladder",), (8.0, 60.0), (12.0, 30.0),
              _WALL_PRIORS, _WALL_HU, min_inside=0.95),
    # enhanced: the published tumour-to-pancreas contrast (mean +/- 1 SD) and the shares of hypo- and
    # isoattenuating tumours (_PDAC_HYPO, _PDAC_ISO); native: no published range found
    SynthSpec("pancreas_tumor", "solid", ("pancreas",), (6.0, 60.0), (12.0, 30.0),
              {"shape": {"irregular": 0.6, "round-like": 0.3, "lobulated": 0.1},
               "density": {"hypodense": _PDAC_HYPO.share, "isodense": _PDAC_ISO.share},
               "heterogeneity": {"homogeneous": 0.4, "heterogeneous": 0.6},
               "margin": {"well-defined": 0.2, "ill-defined": 0.8}, "relation": _REL},
              {"hypodense": DensityHU("relative", (-25.0, -12.0), _PDAC_HYPO.within_one_sd()),
               "isodense": DensityHU("relative", (-4.0, 4.0), (-5.0, 5.0))}, min_hu=SOLID_MIN_HU),
    SynthSpec("kidney_tumor", "solid", ("kidney_left", "kidney_right"), (6.0, 120.0), (15.0, 45.0),
              {"shape": {"round-like": 0.6, "irregular": 0.25, "lobulated": 0.15},
               "density": {"hypodense": 0.5, "isodense": 0.2, "hyperdense": 0.3},
               "heterogeneity": _SOLID_HET, "margin": {"well-defined": 0.6, "ill-defined": 0.4},
               "relation": {"none": 0.4, "close-contact": 0.6}},
              # native: within +/- 14 HU of the parenchyma (was -30..-15 and +15..+30), so that in our native
              # hosts (parenchyma 24-32 HU) every class lands in the published unenhanced 1 SD bands (20-44 HU,
              # DENSITY_REFERENCES): renal cancers are near-isodense before contrast. Enhanced: hand-set; the hypodense
              # range reaches down to papillary RCC, iso and hyper sit in the hypervascular ccRCC bands
              {"hypodense": DensityHU("relative", (-12.0, -8.0), (-90.0, -30.0)),
               "isodense": DensityHU("relative", (-4.0, 4.0), (-5.0, 5.0)),
               "hyperdense": DensityHU("relative", (8.0, 14.0), (20.0, 40.0))}, min_hu=SOLID_MIN_HU,
              min_inside=0.45, exophytic=True, spares_renal_sinus=True),
    SynthSpec("bladder_cancer", "wall", ("urinary_bladder",), (8.0, 60.0), (12.0, 35.0),
              _WALL_PRIORS, _WALL_HU, min_inside=0.95),
    SynthSpec("esophageal_cancer", "wall", ("esophagus",), (8.0, 80.0), (15.0, 40.0),
              _WALL_PRIORS, _WALL_HU, min_inside=0.95),
    SynthSpec("gastric_cancer", "wall", ("stomach",), (8.0, 80.0), (15.0, 40.0),
              _WALL_PRIORS, _WALL_HU, min_inside=0.95),
    SynthSpec("colorectal_cancer", "wall", ("colon",), (8.0, 80.0), (15.0, 40.0),
              _WALL_PRIORS, _WALL_HU, min_inside=0.95),
    SynthSpec("bone_metastasis", "bone", ("vertebrae_*",), (5.0, 45.0), (10.0, 25.0),
              {"shape": {"irregular": 0.6, "round-like": 0.4},
               # lytic / sclerotic: of 3333 spinal metastases in 309 patients (CT with MRI as reference; Lee JO
               # et al., Skeletal Radiol 2024;53:1553, doi:10.1007/s00256-024-04623-5) those seen on CT were 47 %
               # sclerotic and 43 % lytic (the rest mixed, not drawn here): 52 / 48 % (was 35 / 65 %, hand-set)
               "density": {"hypodense": 0.48, "hyperdense": 0.52},
               "heterogeneity": {"homogeneous": 0.4, "heterogeneous": 0.6},
               "margin": {"well-defined": 0.5, "ill-defined": 0.5}, "relation": {"none": 0.7, "close-contact": 0.3}},
              # lytic: soft tissue (30-60 HU) keeping 20-70 % of the vertebra's trabecular density, so a
              # lytic lesion in a 180 HU vertebra averages ~102 HU (published 116 +/- 40 HU) and one in an
              # osteoporotic 110 HU vertebra ~70 HU; sclerotic: the published 444 +/- 87 HU, mean +/- 1 SD
              {"hypodense": DensityHU("replacement", (30.0, 60.0), (30.0, 60.0), kept=(0.2, 0.7)),
               "hyperdense": DensityHU("absolute", _SCLEROTIC.within_one_sd(), _SCLEROTIC.within_one_sd())},
              notes=("hypodense = lytic, hyperdense = sclerotic",)),
    SynthSpec("liver_cyst", "cyst", ("liver",), (4.0, 100.0), (8.0, 40.0), _CYST_PRIORS, _CYST),
    SynthSpec("gallstone", "stone", ("gallbladder",), (2.0, 35.0), (5.0, 18.0), _STONE_PRIORS,
              {"hyperdense": DensityHU("absolute", (150.0, 800.0), (150.0, 800.0))}, min_inside=0.95),
    SynthSpec("pancreas_cyst", "cyst", ("pancreas",), (4.0, 60.0), (8.0, 25.0), _CYST_PRIORS, _CYST),
    SynthSpec("kidney_cyst", "cyst", ("kidney_left", "kidney_right"), (4.0, 80.0), (8.0, 35.0),
              {**_CYST_PRIORS, "relation": {"none": 0.5, "close-contact": 0.5}}, _CYST, spares_renal_sinus=True),
    SynthSpec("kidney_stone", "stone", ("kidney_left", "kidney_right"), (2.0, 25.0), (4.0, 12.0),
              # uniform 300-1200 HU: mean 750, SD 260, as the published renal stones (714 +/- 261 HU)
              _STONE_PRIORS, {"hyperdense": DensityHU("absolute", (300.0, 1200.0), (300.0, 1200.0))},
              min_inside=0.95),
)}



def spec_for(name_or_id: str | int) -> SynthSpec:
    """The synthesis spec of a lesion type given by id, key or name (PastaInputError if unknown or if
    the type has no synthesis parameters)."""
    lesion_type = lesion_types.lookup(name_or_id)
    spec = SPECS.get(lesion_type.synthesis_key)
    if spec is None:
        raise PastaInputError(f"Lesion type {lesion_type.key} has no synthesis parameters.",
                              f"Add its SynthSpec to PASTASynthLib.catalog.SPECS; types that can be synthesised: "
                              f"{', '.join(s.key for s in specs())}.")
    return spec


def specs() -> list[SynthSpec]:
    """The synthesis spec of every type in the lesion table that has one, in id order."""
    return [SPECS[t.synthesis_key] for t in lesion_types.LESION_TYPES if t.synthesis_key in SPECS]


def parse_attributes(spec: SynthSpec, pairs: Mapping[str, str]) -> dict[str, str]:
    """Canonical, validated attributes from user ``KEY=VALUE`` pairs (PastaInputError if bad)."""
    result: dict[str, str] = {}
    for raw_key, raw_value in pairs.items():
        key = raw_key.strip().lower().replace("_", " ")
        key = KEY_ALIASES.get(key, key)
        if key not in ATTRIBUTES:
            raise PastaInputError(f"Unknown attribute {raw_key!r}.",
                                  f"Use one of: {', '.join(ATTRIBUTES)}.")
        value = raw_value.strip().lower().replace("_", "-").replace(" ", "-").replace(",", "")
        value = VALUE_ALIASES.get(value, value)
        if value not in ATTRIBUTES[key]:
            raise PastaInputError(f"Unknown value {raw_value!r} for attribute {key}.",
                                  f"Use one of: {', '.join(ATTRIBUTES[key])}.")
        if value not in spec.priors[key]:
            raise PastaInputError(
                f"{key}={value} is not plausible for a {spec.type.name.lower()}.",
                f"For {spec.key} use {key} = {' | '.join(spec.priors[key])}.")
        result[key] = value
    return result


def describe(spec: SynthSpec) -> str:
    """One block of ``pasta synth --lesion list``."""
    t = spec.type
    prior = spec.size_prior
    default = (f"default {prior.measure} median {prior.median_mm:.1f} mm, 80 % within {prior.quantile(0.1):.0f}-"
               f"{prior.quantile(0.9):.0f} mm: {prior.source}" if prior else
               f"default {spec.typical_mm[0]:g}-{spec.typical_mm[1]:g}, uniform")
    lines = [f"{t.id:2d} {t.key:<20} {'malignant' if t.malignant else 'benign':9}  host: "
             f"{', '.join(spec.hosts)}  size {spec.size_mm[0]:g}-{spec.size_mm[1]:g} mm ({default})"]
    for key, weights in spec.priors.items():
        lines.append(f"     {key:<13} " + " | ".join(f"{v} ({w:.0%})" for v, w in weights.items()))
    # hollow-organ labels hold their lumen: wall cancers are drawn against soft tissue (appearance.reference_hu)
    reference = "soft tissue" if spec.kind == "wall" else "organ"
    lines.append(f"     {'HU':<13} " + " | ".join(f"{d}: {describe_density(h, reference)}"
                                                  for d, h in spec.appearance.items())
                 + (" (soft tissue: 40 HU native, 80 HU enhanced)" if spec.kind == "wall" else ""))
    published = DENSITY_REFERENCES.get(spec.key, ())
    if published:
        sign = "+" if published[0].measure.startswith("contrast") else ""
        source = "; ".join(f"{r.measure}, {r.phase} phase, {r.mean_hu:{sign}g} +/- {r.sd_hu:g} ({r.source})"
                           for r in published)
    elif spec.kind == "cyst":
        source = "fluid, inside Bosniak v2019's -9 to 20 HU"
    else:
        source = "none found: hand-set ranges"
    lines.append(f"     {'published HU':<13} {source}")
    if spec.kind == "wall":
        thickness = spec.wall_thickness
        lines.append(f"     {'thickness':<13} " + (
            f"mean {thickness.mean_mm:.1f} mm, at most the lesion's smallest diameter: {thickness.source}" if thickness
            else "0.45 (wall-thickening) or 0.9 of the smallest radius: no published distribution found"))
    lines.extend(f"     note: {n}" for n in spec.notes)
    return "\n".join(lines)


def describe_density(density: DensityHU, reference: str = "organ") -> str:
    """A density class's HU in words: relative to ``reference``, absolute, or a replacement of the organ."""
    def span(lo: float, hi: float) -> str:
        return f"{lo:+.0f} to {hi:+.0f}" if density.mode == "relative" else f"{lo:.0f} to {hi:.0f}"

    phases = (span(*density.native) + " in any phase" if density.native == density.enhanced else
              f"{span(*density.native)} native, {span(*density.enhanced)} enhanced")
    if density.mode == "relative":
        return f"{reference} {phases}"
    if density.mode == "replacement":
        return f"tissue at {phases} keeping {density.kept[0]:.0%}-{density.kept[1]:.0%} of the organ's density"
    return phases


def organ_names_match(spec: SynthSpec, name: str) -> bool:
    """True when a TotalSegmentator class name is one of the type's host organs."""
    return any(name.startswith(h[:-1]) if h.endswith("*") else name == h for h in spec.hosts)


#: Blur a margin adds to the scanner's own (Gaussian sigma, mm): a well-defined lesion is as sharp as
#: the scanner shows anything; an ill-defined one blends into its surroundings over a few mm.
MARGIN_EXTRA_SIGMA_MM = {"well-defined": 0.0, "ill-defined": 1.8}


def default_weights(spec: SynthSpec, key: str) -> Optional[Weights]:
    return spec.priors.get(key)
