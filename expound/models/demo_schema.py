"""The feature schema and reason table of the demo credit models (German credit data).

The source CSV spells categories as long texts; ``SOURCE_COLUMNS`` maps each feature to
its source column and each short category name to the source text.
"""

from __future__ import annotations

from expound.models.manifest import FeatureSpec, ReasonEntry, RecourseSpec

F = FeatureSpec

FEATURES: list[FeatureSpec] = [
    F(
        name="checking_account",
        type="category",
        description="status of the checking account at this bank",
        categories=["overdrawn", "below_200_dm", "200_dm_or_more", "no_account"],
        category_descriptions={
            "overdrawn": "overdrawn (balance below 0 DM)",
            "below_200_dm": "a balance between 0 and 200 DM",
            "200_dm_or_more": "a balance of 200 DM or more, or salary paid in for a year",
            "no_account": "no checking account",
        },
        actionable=True,
        recourse=RecourseSpec(
            direction="increase", order=["overdrawn", "below_200_dm", "200_dm_or_more"]
        ),
        aliases=["checking account", "current account", "account balance"],
    ),
    F(
        name="duration_months",
        type="integer",
        description="length of the loan term",
        unit="months",
        minimum=1,
        maximum=120,
        actionable=True,
        recourse=RecourseSpec(direction="decrease", minimum=6, maximum=72, step=6),
        aliases=["loan term", "duration", "repayment period", "term"],
    ),
    F(
        name="credit_history",
        type="category",
        description="record of repaying past credit",
        categories=[
            "no_credits_or_all_paid",
            "all_paid_at_this_bank",
            "existing_paid_duly",
            "past_delays",
            "critical_account",
        ],
        category_descriptions={
            "no_credits_or_all_paid": "no credits taken, or all paid back on time",
            "all_paid_at_this_bank": "all credits at this bank paid back on time",
            "existing_paid_duly": "existing credits paid back on time so far",
            "past_delays": "delays in paying off credit in the past",
            "critical_account": "a critical account or credits at other banks",
        },
        aliases=["credit history", "repayment history", "payment history"],
    ),
    F(
        name="purpose",
        type="category",
        description="purpose of the loan",
        categories=[
            "new_car",
            "used_car",
            "furniture",
            "radio_tv",
            "appliances",
            "repairs",
            "education",
            "retraining",
            "business",
            "other",
        ],
        category_descriptions={
            "new_car": "a new car",
            "used_car": "a used car",
            "furniture": "furniture or equipment",
            "radio_tv": "a radio or television",
            "appliances": "household appliances",
            "repairs": "repairs",
            "education": "education",
            "retraining": "retraining",
            "business": "business",
            "other": "other",
        },
        actionable=True,
        aliases=["loan purpose", "purpose of the loan"],
    ),
    F(
        name="credit_amount",
        type="number",
        description="amount of credit requested",
        unit="DM",
        minimum=100,
        maximum=50000,
        actionable=True,
        recourse=RecourseSpec(direction="decrease", minimum=500, maximum=20000, step=500),
        aliases=["loan amount", "amount requested", "credit amount", "amount borrowed"],
    ),
    F(
        name="savings",
        type="category",
        description="savings and bonds held",
        categories=[
            "below_100_dm",
            "100_to_500_dm",
            "500_to_1000_dm",
            "1000_dm_or_more",
            "none_or_unknown",
        ],
        category_descriptions={
            "below_100_dm": "less than 100 DM",
            "100_to_500_dm": "between 100 and 500 DM",
            "500_to_1000_dm": "between 500 and 1,000 DM",
            "1000_dm_or_more": "1,000 DM or more",
            "none_or_unknown": "no savings or unknown",
        },
        actionable=True,
        recourse=RecourseSpec(
            direction="increase",
            order=["below_100_dm", "100_to_500_dm", "500_to_1000_dm", "1000_dm_or_more"],
        ),
        aliases=["savings", "savings balance", "bonds"],
    ),
    F(
        name="employment_since",
        type="category",
        description="time in the present employment",
        categories=[
            "unemployed",
            "below_1_year",
            "1_to_4_years",
            "4_to_7_years",
            "7_years_or_more",
        ],
        category_descriptions={
            "unemployed": "unemployed",
            "below_1_year": "less than a year",
            "1_to_4_years": "between one and four years",
            "4_to_7_years": "between four and seven years",
            "7_years_or_more": "seven years or more",
        },
        aliases=["employment", "time at the current job", "job tenure", "years employed"],
    ),
    # The data's codes for the instalment rate and the residence time, from the code table
    # of the same 1,000 loans in Groemping (2019), "South German Credit Data: Correcting a
    # Widely Used Data Set" (Beuth Hochschule, Report 4/2019; UCI "South German Credit"):
    # rate 1: >= 35%, 2: 25 <= ... < 35%, 3: 20 <= ... < 25%, 4: < 20%; residence 1: < 1
    # year, 2: 1 <= ... < 4 years, 3: 4 <= ... < 7 years, 4: >= 7 years. The data agree:
    # the median credit amount falls from 3,423 DM at rate 1 to 1,844 DM at rate 4 (a
    # larger loan, a larger share of income). A higher rate code is a LIGHTER burden.
    F(
        name="installment_rate",
        type="integer",
        description="instalment as a share of disposable income",
        unit="band",
        minimum=1,
        maximum=4,
        value_labels={"1": "35% or more", "2": "25 to 35%", "3": "20 to 25%", "4": "under 20%"},
        actionable=True,
        # A lighter instalment (a longer term, a smaller amount) is a higher code.
        recourse=RecourseSpec(direction="increase", minimum=1, maximum=4, step=1),
        aliases=["instalment rate", "installment rate", "repayment burden", "instalment"],
    ),
    F(
        name="other_debtors",
        type="category",
        description="co-applicant or guarantor on the loan",
        categories=["none", "co_applicant", "guarantor"],
        # Not "none": other instalment plans may have none too, and a value must name one
        # feature's value (expound/models/wording.py).
        category_descriptions={
            "none": "neither",
            "co_applicant": "a co-applicant",
            "guarantor": "a guarantor",
        },
        actionable=True,
        aliases=["guarantor", "co-applicant", "other debtors"],
    ),
    F(
        name="residence_since",
        type="integer",
        description="time at the present residence",
        unit="band",
        minimum=1,
        maximum=4,
        # Worded apart from the employment times: a value phrase names one feature's value.
        value_labels={
            "1": "under a year",
            "2": "one to four years",
            "3": "four to seven years",
            "4": "seven years or longer",
        },
        aliases=["time at the current address", "residence"],
    ),
    F(
        name="property",
        type="category",
        description="most valuable property owned",
        categories=["real_estate", "savings_agreement_or_insurance", "car_or_other", "none"],
        # No "savings" in a value: it would name the savings feature.
        category_descriptions={
            "real_estate": "real estate",
            "savings_agreement_or_insurance": "life insurance or a building society contract",
            "car_or_other": "a car or other property",
            "none": "none known",
        },
        aliases=["property", "assets", "collateral"],
    ),
    F(
        name="age_years",
        type="integer",
        description="age of the applicant",
        unit="years",
        minimum=18,
        maximum=100,
        protected=True,
        aliases=["age", "years old"],
    ),
    F(
        name="other_installment_plans",
        type="category",
        description="other instalment plans",
        categories=["bank", "stores", "none"],
        category_descriptions={
            "bank": "with a bank",
            "stores": "with stores",
            "none": "no other plans",
        },
        actionable=True,
        aliases=["other instalment plans", "other installment plans", "other loans"],
    ),
    F(
        name="housing",
        type="category",
        description="housing situation",
        categories=["rent", "own", "free"],
        category_descriptions={
            "rent": "a rented home",
            "own": "own home",
            "free": "living rent-free",
        },
        aliases=["housing", "home ownership", "renting"],
    ),
    F(
        name="existing_credits",
        type="integer",
        description="number of existing credits at this bank",
        minimum=1,
        maximum=10,
        unit="credits",
        actionable=True,
        recourse=RecourseSpec(direction="decrease", minimum=1, maximum=4, step=1),
        aliases=["existing credits", "number of credits", "other credits at this bank"],
    ),
    F(
        name="job",
        type="category",
        description="type of employment",
        categories=["unskilled_non_resident", "unskilled_resident", "skilled", "highly_qualified"],
        category_descriptions={
            "unskilled_non_resident": "unskilled, non-resident",
            "unskilled_resident": "unskilled, resident",
            "skilled": "skilled employee or official",
            "highly_qualified": "management, self-employed or highly qualified",
        },
        aliases=["job", "occupation", "type of job"],
    ),
    F(
        name="dependents",
        type="integer",
        description="number of people the applicant supports",
        minimum=0,
        maximum=10,
        unit="people",
        aliases=["dependants", "dependents", "people supported"],
    ),
    F(
        name="has_telephone",
        type="bool",
        description="telephone registered in the applicant's name",
        aliases=["telephone", "phone"],
    ),
]

R = ReasonEntry

REASONS: list[ReasonEntry] = [
    R(
        code="CHK01",
        text="Status or balance of your checking account",
        neutral_text="Status or balance of the applicant's checking account",
        features=["checking_account"],
    ),
    R(code="TRM02", text="Length of the requested loan term", features=["duration_months"]),
    R(
        code="HIS03",
        text="Your credit repayment history",
        neutral_text="The applicant's credit repayment history",
        features=["credit_history"],
    ),
    R(code="PUR04", text="Purpose of the requested loan", features=["purpose"]),
    R(code="AMT05", text="Amount of credit requested", features=["credit_amount"]),
    R(code="SAV06", text="Level of savings or bonds", features=["savings"]),
    R(code="EMP07", text="Length or type of employment", features=["employment_since", "job"]),
    R(
        code="INS08",
        text="Instalment relative to disposable income",
        features=["installment_rate"],
    ),
    R(code="GUA09", text="Co-applicant or guarantor arrangements", features=["other_debtors"]),
    R(code="RES10", text="Length of time at the present residence", features=["residence_since"]),
    R(code="PRO11", text="Property or collateral held", features=["property"]),
    R(
        code="OBL12",
        text="Other credit obligations",
        features=["other_installment_plans", "existing_credits"],
    ),
    R(code="HOU13", text="Housing situation", features=["housing"]),
    R(
        code="DEP14",
        text="Number of people you support",
        neutral_text="Number of people the applicant supports",
        features=["dependents"],
    ),
    R(code="TEL15", text="Telephone registration", features=["has_telephone"]),
]

# feature -> (source column, {short category: source text}); numbers map to themselves.
SOURCE_COLUMNS: dict[str, tuple[str, dict[str, str]]] = {
    "checking_account": (
        "status_of_existing_checking_account",
        {
            "overdrawn": "... < 0 DM",
            "below_200_dm": "0 <= ... < 200 DM",
            "200_dm_or_more": "... >= 200 DM / salary assignments for at least 1 year",
            "no_account": "no checking account",
        },
    ),
    "duration_months": ("duration_in_month", {}),
    "credit_history": (
        "credit_history",
        {
            "no_credits_or_all_paid": "no credits taken/ all credits paid back duly",
            "all_paid_at_this_bank": "all credits at this bank paid back duly",
            "existing_paid_duly": "existing credits paid back duly till now",
            "past_delays": "delay in paying off in the past",
            "critical_account": "critical account/ other credits existing (not at this bank)",
        },
    ),
    "purpose": (
        "purpose",
        {
            "new_car": "car (new)",
            "used_car": "car (used)",
            "furniture": "furniture/equipment",
            "radio_tv": "radio/television",
            "appliances": "domestic appliances",
            "repairs": "repairs",
            "education": "education",
            "retraining": "retraining",
            "business": "business",
            "other": "others",
        },
    ),
    "credit_amount": ("credit_amount", {}),
    "savings": (
        "savings_account_and_bonds",
        {
            "below_100_dm": "... < 100 DM",
            "100_to_500_dm": "100 <= ... < 500 DM",
            "500_to_1000_dm": "500 <= ... < 1000 DM",
            "1000_dm_or_more": "... >= 1000 DM",
            "none_or_unknown": "unknown/ no savings account",
        },
    ),
    "employment_since": (
        "present_employment_since",
        {
            "unemployed": "unemployed",
            "below_1_year": "... < 1 year",
            "1_to_4_years": "1 <= ... < 4 years",
            "4_to_7_years": "4 <= ... < 7 years",
            "7_years_or_more": "... >= 7 years",
        },
    ),
    "installment_rate": ("installment_rate_in_percentage_of_disposable_income", {}),
    "other_debtors": (
        "other_debtors_or_guarantors",
        {"none": "none", "co_applicant": "co-applicant", "guarantor": "guarantor"},
    ),
    "residence_since": ("present_residence_since", {}),
    "property": (
        "property",
        {
            "real_estate": "real estate",
            "savings_agreement_or_insurance": "building society savings agreement/ life insurance",
            "car_or_other": "car or other, not in attribute Savings account/bonds",
            "none": "unknown / no property",
        },
    ),
    "age_years": ("age_in_years", {}),
    "other_installment_plans": (
        "other_installment_plans",
        {"bank": "bank", "stores": "stores", "none": "none"},
    ),
    "housing": ("housing", {"rent": "rent", "own": "own", "free": "for free"}),
    "existing_credits": ("number_of_existing_credits_at_this_bank", {}),
    "job": (
        "job",
        {
            "unskilled_non_resident": "unemployed/ unskilled - non-resident",
            "unskilled_resident": "unskilled - resident",
            "skilled": "skilled employee / official",
            "highly_qualified": "management/ self-employed/ highly qualified employee/ officer",
        },
    ),
    "dependents": ("number_of_people_being_liable_to_provide_maintenance_for", {}),
    "has_telephone": ("telephone", {}),
}
