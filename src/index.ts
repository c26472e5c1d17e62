/**
 * p5rec as a library: `import { … } from 'p5rec'`. The CLI is a thin shell over
 * these same calls. Progress goes to stderr unless a listener takes it
 * (setProgressListener); P5 and the T5 model need `initEngine()` once first.
 */
export { P5recError, InputError, NotFoundError } from './errors.js';
export { Rng } from './util/rng.js';
export { VERSION } from './version.js';
export { setProgressListener, type ProgressEvent } from './util/progress.js';

// Datasets: import raw files into a dataset folder, open it, describe it.
export { importDataset, readSource, type ImportSource } from './data/import.js';
export { DEFAULT_SEED, type BuildOptions } from './data/build.js';
export { Dataset, loadDataset } from './data/dataset.js';
export type { TableColumns } from './data/import-table.js';
export type { Manifest } from './data/manifest.js';
export { datasetStats } from './data/stats.js';
export { auditLeak } from './data/audit.js';
export { collaborativeTokens } from './data/collaborative.js';
export { extractExplanations, EXPLANATION_WORD_LISTS } from './data/explanations.js';
export { bundledData } from './bundled.js';

// Models behind the one Recommender seam: fit, save, load.
export { TASKS, type Task, type TrainSplit, type Recommender, type RecommenderFactory, type FitContext, type ModelState } from './recommend/recommender.js';
export { FACTORIES, getFactory } from './recommend/registry.js';
export { fitModel, type FitOptions } from './recommend/fit.js';
export { saveModel, loadModel, readModelCard, type ModelCard } from './recommend/store.js';

// P5: prompts, training, the recommender, text evaluation.
export { loadPromptCollection, type PromptCollection, type PromptTemplate, type PromptTask } from './prompts/templates.js';
export { trainP5, type P5TrainOptions, type P5TrainResult } from './p5/train.js';
export { P5_DEFAULTS, resolveP5Options, recipeJson, RECIPE_FILE, type ResolvedP5Config, type P5RecipeOptions } from './p5/config.js';
export { P5Recommender, DEFAULT_P5_SETTINGS, type P5Settings } from './p5/recommender.js';
export { evaluateText, textMetrics, textStandardErrors, type TextTask, type TextEvalResult } from './p5/evaluate-text.js';

// The tensor engine, the tokenizer and the T5 model.
export { initEngine, type Engine, type EngineOptions, type BackendName } from './engine/backend.js';
export { T5Tokenizer } from './tokenizer/tokenizer.js';
export { T5Model } from './models/t5/model.js';
export { resolveT5Config, T5_PRESETS, type T5Config, type T5Preset } from './models/t5/config.js';
// The training loop (data-parallel workers, AdamW, checkpoints) and the T5 task it runs.
export { train, type TrainOptions, type TrainResult } from './train/trainer.js';
export { t5Task, T5_TASK_MODULE } from './train/t5-task.js';

// Evaluation and reports.
export { evaluate, type EvalOptions, type EvalResult, type EvalSplit } from './eval/evaluate.js';
export { rmse, mae, ratingStandardErrors, RankingAccumulator, bleu4, bleu2, rouge } from './eval/metrics.js';
export { collectRuns, buildTables, writeReport, type Run, type Table } from './eval/report.js';
export { pairedDifference, encodePerUser, decodeUsers, decodeRanks, metricFromRanks, type PairedDifference, type PerUserRanks } from './eval/paired.js';
export { runEnv, type RunEnv } from './eval/run-env.js';

// A whole experiment from one config: import, fit, train P5, evaluate, report (resumable).
export {
  runPipeline, type PipelineConfig, type PipelinePart, type PipelineSubPart, type PipelineModel, type PipelineP5, type PipelineLlm,
  type PipelineLlmProvider, type PipelineEval, type PipelineResult, type PipelinePartResult, type PipelineStage, type PipelineLlmResult,
} from './pipeline/pipeline.js';
export { evaluateToRunFile, type RunOptions, type RunTask, type RatingMode } from './eval/run-file.js';

// Serving.
export { buildApp, type AppDeps } from './serve/app.js';
export { startServe, type ServeOptions, type Served } from './serve/start.js';

// LLMs as recommenders (also importable alone from 'p5rec/llm').
export { createOpenAICompatible, createLlamaProvider, LlmRecommender, runLlmEval, type LLMProvider, type LlmEvalOptions } from './llm/index.js';
