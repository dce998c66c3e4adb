// Application Insights on a Log Analytics workspace. Local (instrumentation key) authentication
// is off: telemetry is accepted only with an Entra token, which the host gets for the app's
// identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING, api.bicep; Monitoring Metrics Publisher,
// rbac.bicep).
param logAnalyticsName string
param applicationInsightsName string
param location string = resourceGroup().location
param tags object = {}

module logAnalytics 'br/public:avm/res/operational-insights/workspace:0.11.1' = {
  name: 'log-analytics-workspace'
  params: {
    name: logAnalyticsName
    location: location
    tags: tags
    dataRetention: 30
  }
}

module applicationInsights 'br/public:avm/res/insights/component:0.6.0' = {
  name: 'application-insights'
  params: {
    name: applicationInsightsName
    location: location
    tags: tags
    workspaceResourceId: logAnalytics.outputs.resourceId
    disableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.outputs.name
// Not a secret: with local authentication off, the key in it admits no telemetry by itself.
output connectionString string = applicationInsights.outputs.connectionString
