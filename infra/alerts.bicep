// The alerts that matter: a release that failed (qa_failed or rolled_back), scoring p99 latency, scoring error rate.
param prefix string
param location string
param insightsId string
@description('Where alerts go (an action group id); empty = no notification, the alert still fires in the portal.')
param actionGroupId string = ''

var actions = empty(actionGroupId) ? [] : [actionGroupId]

resource failedRelease 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${prefix}-release-failed'
  location: location
  properties: {
    displayName: 'mlops: a release ended qa_failed or rolled_back'
    severity: 2
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [{
        query: 'traces | where message has "release-" and (message has "qa_failed" or message has "rolled_back")'
        timeAggregation: 'Count'
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
        query: 'requests | where url endswith "/score" | summarize p99 = percentile(duration, 99) by bin(timestamp, 5m)'
        metricMeasureColumn: 'p99'
        timeAggregation: 'Maximum'
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
    displayName: 'mlops: scoring error rate above 1%'
    severity: 1
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [{
        query: 'requests | where url endswith "/score" | summarize rate = 100.0 * countif(toint(resultCode) >= 500) / count() by bin(timestamp, 5m)'
        metricMeasureColumn: 'rate'
        timeAggregation: 'Maximum'
        operator: 'GreaterThan'
        threshold: 1
        failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
      }]
    }
    actions: { actionGroups: actions }
  }
}
