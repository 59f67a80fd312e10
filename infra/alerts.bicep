// The alerts that matter, on the telemetry the code emits (names declared in backends/telemetry.py and
// scoring/telemetry.py; a test checks that every name these queries use is one the code emits):
// - a release that failed (qa_failed, rolled_back, or its orchestration failed) and a retrain that failed:
//   the RunFinished custom event (customEvents) of the record_outcome activity;
// - scoring p99 latency and error rate: the scoring server's custom metrics (customMetrics).
param prefix string
param location string
param insightsId string
@description('Where alerts go (an action group id); empty = no notification, the alert still fires in the portal.')
param actionGroupId string = ''

var actions = empty(actionGroupId) ? [] : [actionGroupId]
var runs = 'customEvents | where name == "RunFinished" | extend kind = tostring(customDimensions.kind), outcome = tostring(customDimensions.outcome), model = tostring(customDimensions.model), version = tostring(customDimensions.version), run_id = tostring(customDimensions.run_id)'

resource failedRelease 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${prefix}-release-failed'
  location: location
  properties: {
    displayName: 'mlops: a release ended qa_failed or rolled_back, or failed'
    severity: 2
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [{
        query: '${runs} | where kind == "release" and outcome in ("qa_failed", "rolled_back", "failed")'
        timeAggregation: 'Count'
        dimensions: [{ name: 'model', operator: 'Include', values: ['*'] }]
        operator: 'GreaterThan'
        threshold: 0
        failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
      }]
    }
    actions: { actionGroups: actions }
  }
}

resource failedRetrain 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${prefix}-retrain-failed'
  location: location
  properties: {
    displayName: 'mlops: a retrain ended training_failed, or failed'
    severity: 3
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT30M'
    criteria: {
      allOf: [{
        query: '${runs} | where kind == "retrain" and outcome in ("training_failed", "failed")'
        timeAggregation: 'Count'
        dimensions: [{ name: 'model', operator: 'Include', values: ['*'] }]
        operator: 'GreaterThan'
        threshold: 0
        failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
      }]
    }
    actions: { actionGroups: actions }
  }
}

resource scoringP99 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${prefix}-scoring-p99'
  location: location
  properties: {
    displayName: 'mlops: scoring p99 latency above 100 ms'
    severity: 2
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [{
        query: 'customMetrics | where name == "scoring_latency_p99_ms" | extend endpoint = tostring(customDimensions.endpoint) | summarize p99 = max(value) by bin(timestamp, 5m), endpoint'
        metricMeasureColumn: 'p99'
        timeAggregation: 'Maximum'
        dimensions: [{ name: 'endpoint', operator: 'Include', values: ['*'] }]
        operator: 'GreaterThan'
        threshold: 100
        failingPeriods: { numberOfEvaluationPeriods: 3, minFailingPeriodsToAlert: 2 }
      }]
    }
    actions: { actionGroups: actions }
  }
}

resource scoringErrors 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${prefix}-scoring-errors'
  location: location
  properties: {
    displayName: 'mlops: scoring error rate (5xx) above 1%'
    severity: 1
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [{
        query: 'customMetrics | where name == "scoring_requests_total" | extend endpoint = tostring(customDimensions.endpoint), status_class = tostring(customDimensions.status_class) | summarize total = sum(valueSum), errors = sumif(valueSum, status_class == "5xx") by bin(timestamp, 5m), endpoint | where total > 0 | extend rate = 100.0 * errors / total'
        metricMeasureColumn: 'rate'
        timeAggregation: 'Maximum'
        dimensions: [{ name: 'endpoint', operator: 'Include', values: ['*'] }]
        operator: 'GreaterThan'
        threshold: 1
        failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
      }]
    }
    actions: { actionGroups: actions }
  }
}
