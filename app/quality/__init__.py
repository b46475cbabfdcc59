"""Off-chain quality logic: contract templates, ISO 2859-1 sampling plans, batch acceptance.

Pure functions over plain data (dicts, pydantic models); nothing here imports the rest of ``app``, so the
gateway's services call it directly::

    from app.quality import library_template, assess_inspection
    template = library_template("battery_electrode_coating")
    result = assess_inspection(template, parsed.inspection, lot_size=2000)
    result.verdict   # "accept" | "reject"
"""

from app.quality.acceptance import (
    ASSESSMENT_VERSION,
    BatchAssessment,
    CharacteristicStats,
    ClassResult,
    Finding,
    RecordVerdict,
    assess_batch,
    assess_inspection,
    canonical_unit,
    cpk,
    plans_for_lot,
    units_equivalent,
)
from app.quality.errors import (
    AssessmentInputError,
    LotSizeError,
    QualityError,
    SamplingError,
    TemplateError,
    TemplateProblem,
    UnknownAQLError,
    UnknownInspectionLevelError,
)
from app.quality.sampling import (
    AQL_VALUES,
    CODE_LETTERS,
    INSPECTION_LEVELS,
    SAMPLE_SIZES,
    SamplingPlan,
    code_letter,
    full_inspection_plan,
    plan_for,
    table_2a_cell,
)
from app.quality.template import (
    SCHEMA_PATH,
    SCHEMA_VERSION,
    Characteristic,
    Template,
    export_json_schema,
    library_template,
    library_templates,
    load_template,
    write_json_schema,
)

__all__ = [
    "AQL_VALUES",
    "ASSESSMENT_VERSION",
    "CODE_LETTERS",
    "INSPECTION_LEVELS",
    "SAMPLE_SIZES",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "AssessmentInputError",
    "BatchAssessment",
    "Characteristic",
    "CharacteristicStats",
    "ClassResult",
    "Finding",
    "LotSizeError",
    "QualityError",
    "RecordVerdict",
    "SamplingError",
    "SamplingPlan",
    "Template",
    "TemplateError",
    "TemplateProblem",
    "UnknownAQLError",
    "UnknownInspectionLevelError",
    "assess_batch",
    "assess_inspection",
    "canonical_unit",
    "code_letter",
    "cpk",
    "export_json_schema",
    "full_inspection_plan",
    "library_template",
    "library_templates",
    "load_template",
    "plan_for",
    "plans_for_lot",
    "table_2a_cell",
    "units_equivalent",
    "write_json_schema",
]
