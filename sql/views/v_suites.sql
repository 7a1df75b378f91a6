-- v_suites: grain = one row per suite. Its columns plus the number of datasets it names.
create or replace view v_suites as
select s.suite_id, s.display_name, s.description, s.dataset_names, s.created_at, s.updated_at,
       cardinality(s.dataset_names) as n_datasets
from suites s;
