// mlops-functions on Azure: storage, Function App (Flex Consumption, managed identity), Application Insights,
// Key Vault, Azure ML workspace + CPU cluster + datastore on the app's storage, Event Grid subscriptions, roles.
// Deploy: az deployment group create -g <rg> -f infra/main.bicep -p infra/main.parameters.json
targetScope = 'resourceGroup'

@description('Short prefix for resource names (lowercase letters and digits).')
@minLength(3)
@maxLength(11)
param prefix string
param location string = resourceGroup().location
@description('Registry name of the model (MODEL_NAME).')
param modelName string = 'diabetes-ridge'
@description('NCRONTAB schedule of the nightly retrain (RETRAIN_SCHEDULE).')
param retrainSchedule string = '0 0 2 * * *'
@description('Name of the AKS cluster attached to the workspace as Kubernetes compute (AZUREML_AKS_COMPUTE).')
param aksComputeName string = 'aks-prod'
@description('Create the Event Grid subscriptions (set true on a second deployment, after the code is published: the webhook keys exist only then).')
param createEventSubscriptions bool = false
@description('System key of the blobs extension (az functionapp keys list), for the BlobCreated subscription.')
@secure()
param blobsExtensionKey string = ''
@description('System key of the eventgrid extension, for the ModelRegistered subscription.')
@secure()
param eventGridExtensionKey string = ''

var containers = ['incoming', 'quarantine', 'datasets', 'scoring-logs']
var storageName = '${prefix}st${uniqueString(resourceGroup().id)}'
var appName = '${prefix}-func'
var workspaceName = '${prefix}-mlw'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take(storageName, 24)
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: { allowBlobPublicAccess: false, minimumTlsVersion: 'TLS1_2', allowSharedKeyAccess: false }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource dataContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in concat(containers, ['app-package']): {
  parent: blobService
  name: c
}]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs'
  location: location
  properties: { sku: { name: 'PerGB2018' }, retentionInDays: 30 }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-appi'
  location: location
  kind: 'web'
  properties: { Application_Type: 'web', WorkspaceResourceId: logs.id }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('${prefix}-kv-${uniqueString(resourceGroup().id)}', 24)
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' = {
  name: workspaceName
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    storageAccount: storage.id
    keyVault: vault.id
    applicationInsights: insights.id
    friendlyName: workspaceName
  }
}

resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: 'cpu-cluster'
  location: location
  properties: {
    computeType: 'AmlCompute'
    properties: {
      vmSize: 'Standard_DS3_v2'
      scaleSettings: { minNodeCount: 0, maxNodeCount: 2, nodeIdleTimeBeforeScaleDown: 'PT10M' }
    }
  }
}

// The datastore the training job reads drops through: azureml://datastores/appdata/paths/<container>/<blob>
resource datastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-04-01' = {
  parent: workspace
  name: 'appdata'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: storage.name
    containerName: 'datasets'
    credentials: { credentialsType: 'None' }
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${prefix}-plan'
  location: location
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  kind: 'functionapp'
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}app-package'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      runtime: { name: 'python', version: '3.11' }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
    }
    siteConfig: {
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'DURABLE_TASK_HUB', value: 'MlopsHub' }
        { name: 'MLOPS_BACKEND', value: 'azureml' }
        { name: 'MODEL_NAME', value: modelName }
        { name: 'INCOMING_CONTAINER', value: 'incoming' }
        { name: 'QUARANTINE_CONTAINER', value: 'quarantine' }
        { name: 'DATASETS_CONTAINER', value: 'datasets' }
        { name: 'SCORING_LOGS_CONTAINER', value: 'scoring-logs' }
        { name: 'RETRAIN_SCHEDULE', value: retrainSchedule }
        { name: 'AZURE_SUBSCRIPTION_ID', value: subscription().subscriptionId }
        { name: 'AZURE_RESOURCE_GROUP', value: resourceGroup().name }
        { name: 'AZUREML_WORKSPACE', value: workspace.name }
        { name: 'AZUREML_COMPUTE', value: cluster.name }
        { name: 'AZUREML_ENVIRONMENT', value: 'mlops-train:1' }
        { name: 'AZUREML_DATASTORE', value: datastore.name }
        { name: 'AZUREML_QA_ENDPOINT', value: '${prefix}-qa' }
        { name: 'AZUREML_PROD_ENDPOINT', value: '${prefix}-prod' }
        { name: 'AZUREML_AKS_COMPUTE', value: aksComputeName }
        { name: 'AZUREML_INSTANCE_TYPE', value: 'Standard_DS3_v2' }
      ]
    }
  }
}

// Role definitions (built-in ids)
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
}

resource appStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
  name: guid(storage.id, app.id, role)
  scope: storage
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource appWorkspaceRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, app.id, roles.azureMLDataScientist)
  scope: workspace
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMLDataScientist)
  }
}

resource appVaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource workspaceReadsDrops 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, workspace.id, roles.storageBlobDataReader)
  scope: storage
  properties: {
    principalId: workspace.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
  }
}

// Event Grid: blob arrivals on incoming/ → the blob trigger (Flex Consumption supports only the Event Grid source),
// and Azure ML's ModelRegistered → the on_model_registered Event Grid trigger.
resource storageTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${prefix}-storage-events'
  location: location
  properties: { source: storage.id, topicType: 'Microsoft.Storage.StorageAccounts' }
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${prefix}-ml-events'
  location: location
  properties: { source: workspace.id, topicType: 'Microsoft.MachineLearningServices.Workspaces' }
}

resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = if (createEventSubscriptions) {
  parent: storageTopic
  name: 'incoming-to-on_blob_drop'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: { endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.on_blob_drop&code=${blobsExtensionKey}' }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/incoming/'
      advancedFilters: [{ operatorType: 'StringIn', key: 'data.api', values: ['PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose'] }]
    }
    eventDeliverySchema: 'EventGridSchema'
  }
}

resource modelRegistered 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = if (createEventSubscriptions) {
  parent: workspaceTopic
  name: 'model-registered-to-on_model_registered'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: { endpointUrl: 'https://${app.properties.defaultHostName}/runtime/webhooks/eventgrid?functionName=on_model_registered&code=${eventGridExtensionKey}' }
    }
    filter: {
      includedEventTypes: ['Microsoft.MachineLearningServices.ModelRegistered']
      subjectBeginsWith: 'models/${modelName}:'
    }
    eventDeliverySchema: 'EventGridSchema'
  }
}

module alerts 'alerts.bicep' = {
  name: 'alerts'
  params: { prefix: prefix, location: location, insightsId: insights.id }
}

output functionAppName string = app.name
output storageAccountName string = storage.name
output workspaceName string = workspace.name
output keyVaultName string = vault.name
