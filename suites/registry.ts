/**
 * The registered suites, in the order `list` and `reproduce` show them. A new suite is one file
 * in `suites/` plus one line here.
 * @module
 */
import type { Suite } from "./suite.ts";
import { selectiveCopy } from "./selective_copy.ts";
import { copyLengthExponent } from "./copy_length_exponent.ts";
import { copyLengthGeneralisation } from "./copy_length_generalisation.ts";
import { copyDataEfficiency } from "./copy_data_efficiency.ts";
import { ngramHashingProbe } from "./ngram_hashing_probe.ts";
import { selectiveCopyingSsm } from "./selective_copying_ssm.ts";
import { metricAttention } from "./metric_attention.ts";
import { ngramLookup } from "./ngram_lookup.ts";
import { phonebookRetrieval } from "./phonebook_retrieval.ts";

/** Every suite `deno task reproduce` can run. */
export const SUITES: readonly Suite[] = [
  selectiveCopy,
  copyLengthExponent,
  copyLengthGeneralisation,
  copyDataEfficiency,
  ngramHashingProbe,
  selectiveCopyingSsm,
  metricAttention,
  ngramLookup,
  phonebookRetrieval,
];
