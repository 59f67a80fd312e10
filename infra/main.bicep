// mlops-functions on Azure: storage (identity only), a Flex Consumption Function App with a user-assigned identity,
// Application Insights, Key Vault, a container registry, an Azure ML workspace (identity-based datastores) with a CPU
// cluster that runs jobs as its own identity, the identity of the online endpoints, Event Grid system topics, the
// role assignments of docs/azure.md and the alerts of alerts.bicep.
// Deploy with infra/deploy.sh (it runs this template twice: the Event Grid subscriptions need the published code).
targetScope = 'resourceGroup'

@description('Short prefix for resource names: 3-11 lowercase letters and digits, starting with a letter.')
@minLength(3)
@maxLength(11)
param prefix string = 'mlops'
param location string = resourceGroup().location
@description('Registry name of the model (MODEL_NAME).')
param modelName string = 'diabetes-ridge'
@description('NCRONTAB schedule (UTC) of the default model\'s scheduled retrain, and of any model whose spec has none (RETRAIN_SCHEDULE).')
param retrainSchedule string = '0 0 2 * * *'
@description('Name of the AKS cluster attached to the workspace as Kubernetes compute (AZUREML_AKS_COMPUTE).')
param aksComputeName string = 'aks-prod'
@description('Object id of the principal running the deployment: it gets Storage Blob Data Contributor on the storage account, to upload drops (shared keys are off). Empty: no assignment.')
param deployerObjectId string = ''
@description('Kind of that principal: User for a person, ServicePrincipal for a pipeline.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param deployerPrincipalType string = 'User'
@description('Create the Event Grid subscriptions (second deployment, after the code is published: the webhook keys exist only then).')
param createEventSubscriptions bool = false
@description('Where alerts go (an action group id); empty = the alerts still fire in the portal.')
param actionGroupId string = ''

// Names: global (storage, Key Vault, registry, Function App) and region-wide (online and batch endpoints) ones are
// unique per resource group; the rest only need to be unique inside it.
var suffix = uniqueString(resourceGroup().id)
var names = {
  storage: take('${prefix}st${suffix}', 24)
  functionApp: '${prefix}-func-${suffix}'
  plan: '${prefix}-plan-${suffix}'
  vault: take('${prefix}-kv-${suffix}', 24)
  registry: take('${prefix}cr${suffix}', 50)
  workspace: '${prefix}-mlw-${suffix}'
  qaEndpoint: '${prefix}-qa-${suffix}'
  prodEndpoint: '${prefix}-prod-${suffix}'
  batchEndpoint: '${prefix}-bt-${suffix}' // the prefix of each model's batch endpoint, <prefix>-<model>
  logs: '${prefix}-logs'
  insights: '${prefix}-appi'
  appIdentity: '${prefix}-func-id'
  jobIdentity: '${prefix}-train-id'
  endpointIdentity: '${prefix}-endpoint-id'
  storageTopic: '${prefix}-storage-events'
  workspaceTopic: '${prefix}-ml-events'
}
var containers = {
  incoming: 'incoming'
  quarantine: 'quarantine'
  datasets: 'datasets'
  scoringLogs: 'scoring-logs'
  batch: 'batch'
  appPackage: 'app-package'
  deadLetters: 'event-dead-letters'
}
var computeName = 'cpu-cluster'
var datastoreName = 'appdata'
var batchDatastoreName = 'appbatch'

// Built-in role definition ids (docs/azure.md names each one; a test checks the ids against the names).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageFileDataPrivilegedContributor: '69566ab7-960f-475b-8e7c-b3118f30c6bd'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  azureMLDataScientist: 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without a virtual network, Event Grid, Azure ML and the deployer reach the account over its public endpoint; every request needs an Entra token (shared keys are off)
  // checkov:skip=CKV_AZURE_206: LRS keeps the seed cheap; raise the SKU to ZRS/GRS for production data
  // checkov:skip=CKV_AZURE_43: the name is take('<prefix>st<uniqueString>', 24): lowercase letters and digits, 3-24 characters, which checkov cannot evaluate
  name: names.storage
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource dataContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in items(containers): {
  parent: blobService
  name: c.value
}]

resource scoringLogsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containers.scoringLogs
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containers.deadLetters
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: names.logs
  location: location
  properties: { sku: { name: 'PerGB2018' }, retentionInDays: 30 }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: names.insights
  location: location
  kind: 'web'
  properties: { Application_Type: 'web', WorkspaceResourceId: logs.id }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the workspace and its users reach the vault over the public endpoint (no virtual network in this template); RBAC authorizes every request
  // checkov:skip=CKV_AZURE_189: as above, a public endpoint is needed without a virtual network
  name: names.vault
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  // checkov:skip=CKV_AZURE_139: Azure ML builds images with ACR Tasks and the endpoints pull them over the public endpoint (no virtual network); RBAC authorizes every request and the admin user is off
  // checkov:skip=CKV_AZURE_163: vulnerability scanning (Defender for Containers) is a subscription plan, not a property of a Basic registry
  // checkov:skip=CKV_AZURE_166: quarantine needs the Premium SKU; the images here are built by Azure ML from this repository's build context
  name: names.registry
  location: location
  sku: { name: 'Basic' }
  properties: { adminUserEnabled: false, anonymousPullEnabled: false }
}

// Identities: the Function App's (user-assigned, so its roles exist before the app starts and survive a re-creation
// of the app), the cluster's (jobs run as it) and the online endpoints' (QA and production share it).
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.appIdentity
  location: location
}

resource jobIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.jobIdentity
  location: location
}

resource endpointIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.endpointIdentity
  location: location
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' = {
  // checkov:skip=CKV_AZURE_243: a private endpoint needs a virtual network this template does not create
  name: names.workspace
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    friendlyName: names.workspace
    storageAccount: storage.id
    keyVault: vault.id
    applicationInsights: insights.id
    containerRegistry: registry.id
    systemDatastoresAuthMode: 'identity'
    publicNetworkAccess: 'Enabled'
  }
}

resource cluster 'Microsoft.MachineLearningServices/workspaces/computes@2024-04-01' = {
  parent: workspace
  name: computeName
  location: location
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${jobIdentity.id}': {} } }
  properties: {
    computeType: 'AmlCompute'
    disableLocalAuth: true
    properties: {
      vmSize: 'Standard_DS3_v2'
      scaleSettings: { minNodeCount: 0, maxNodeCount: 2, nodeIdleTimeBeforeScaleDown: 'PT10M' }
    }
  }
  // the first job must find its roles in place
  dependsOn: [jobStorage, jobPull]
}

// The datastore the training job reads drops through: azureml://datastores/appdata/paths/<path>. No credentials:
// access is by the identity of whoever reads (the job's identity on the cluster).
resource datastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-04-01' = {
  parent: workspace
  name: datastoreName
  properties: {
    datastoreType: 'AzureBlob'
    accountName: storage.name
    containerName: containers.datasets
    credentials: { credentialsType: 'None' }
  }
}

// The datastore batch endpoint jobs read their input through and write their predictions to:
// azureml://datastores/appbatch/paths/<model>/in/<path> and .../<model>/out/<path> (identity-based, as above).
resource batchDatastore 'Microsoft.MachineLearningServices/workspaces/datastores@2024-04-01' = {
  parent: workspace
  name: batchDatastoreName
  properties: {
    datastoreType: 'AzureBlob'
    accountName: storage.name
    containerName: containers.batch
    credentials: { credentialsType: 'None' }
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption plans have no zone-redundancy setting in this API version
  name: names.plan
  location: location
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  kind: 'functionapp'
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid webhooks and API callers reach the app over its public endpoint; every route needs a function or system key
  // checkov:skip=CKV_AZURE_17: Event Grid deliveries and the Durable HTTP API carry no client certificate
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per event; there are no fixed instances to count
  // checkov:skip=CKV_AZURE_213: a Flex Consumption app has no health check path (the platform watches the host)
  name: names.functionApp
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'UserAssigned', userAssignedIdentities: { '${appIdentity.id}': {} } }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${containers.appPackage}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: appIdentity.id }
        }
      }
      runtime: { name: 'python', version: '3.11' }
      scaleAndConcurrency: { maximumInstanceCount: 40, instanceMemoryMB: 2048 }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // host storage by identity (no connection string): the host, Durable Functions and the app read these
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: appIdentity.properties.clientId }
        { name: 'AZURE_CLIENT_ID', value: appIdentity.properties.clientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'DURABLE_TASK_HUB', value: 'MlopsHub' }
        { name: 'MLOPS_BACKEND', value: 'azureml' }
        { name: 'MODEL_NAME', value: modelName }
        { name: 'INCOMING_CONTAINER', value: containers.incoming }
        { name: 'QUARANTINE_CONTAINER', value: containers.quarantine }
        { name: 'DATASETS_CONTAINER', value: containers.datasets }
        { name: 'SCORING_LOGS_CONTAINER', value: containers.scoringLogs }
        { name: 'BATCH_CONTAINER', value: containers.batch }
        { name: 'RETRAIN_SCHEDULE', value: retrainSchedule }
        { name: 'AZURE_SUBSCRIPTION_ID', value: subscription().subscriptionId }
        { name: 'AZURE_RESOURCE_GROUP', value: resourceGroup().name }
        { name: 'AZUREML_WORKSPACE', value: workspace.name }
        { name: 'AZUREML_COMPUTE', value: cluster.name }
        { name: 'AZUREML_ENVIRONMENT', value: 'mlops-train:1' }
        { name: 'AZUREML_DATASTORE', value: datastore.name }
        { name: 'AZUREML_QA_ENDPOINT', value: names.qaEndpoint }
        { name: 'AZUREML_PROD_ENDPOINT', value: names.prodEndpoint }
        { name: 'AZUREML_BATCH_ENDPOINT', value: names.batchEndpoint }
        { name: 'AZUREML_BATCH_DATASTORE', value: batchDatastore.name }
        { name: 'AZUREML_AKS_COMPUTE', value: aksComputeName }
        { name: 'AZUREML_INSTANCE_TYPE', value: 'Standard_DS3_v2' }
        { name: 'AZUREML_JOB_IDENTITY_CLIENT_ID', value: jobIdentity.properties.clientId }
        { name: 'AZUREML_ENDPOINT_IDENTITY_ID', value: endpointIdentity.id }
        { name: 'AZUREML_ENDPOINT_IDENTITY_CLIENT_ID', value: endpointIdentity.properties.clientId }
        { name: 'AZUREML_ARM_ENDPOINT', value: environment().resourceManager }
        { name: 'AZUREML_SCORING_ENVIRONMENT', value: 'mlops-scoring' }
      ]
    }
  }
  // the host reads its storage at start: the roles come first
  dependsOn: [appBlob, appQueue, appTable]
}

// ---- Role assignments: the table "Identities and roles" of docs/azure.md, one row each (a test compares them). ----

// Function App: host storage, Durable Functions' task hub, blob trigger receipts and poison queue, the app's data
resource appBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource appQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource appTable 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appIdentity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

resource appWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, appIdentity.id, roles.azureMLDataScientist)
  scope: workspace
  properties: {
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.azureMLDataScientist)
  }
}

resource appAssignsEndpointIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(endpointIdentity.id, appIdentity.id, roles.managedIdentityOperator)
  scope: endpointIdentity
  properties: {
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.managedIdentityOperator)
  }
}

// Workspace (system-assigned): its identity-based system datastores, and the scoring images it builds
resource workspaceBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, workspace.id, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    principalId: workspace.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

resource workspaceFile 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, workspace.id, roles.storageFileDataPrivilegedContributor)
  scope: storage
  properties: {
    principalId: workspace.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageFileDataPrivilegedContributor)
  }
}

resource workspacePush 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, workspace.id, roles.acrPush)
  scope: registry
  properties: {
    principalId: workspace.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPush)
  }
}

// Cluster / training jobs: code snapshot and datasets in, model outputs out; the environment image
resource jobStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, jobIdentity.id, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    principalId: jobIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

resource jobPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, jobIdentity.id, roles.acrPull)
  scope: registry
  properties: {
    principalId: jobIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
  }
}

// Online endpoints (QA managed, production Kubernetes): the scoring image, the model, the prediction log
resource endpointPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, endpointIdentity.id, roles.acrPull)
  scope: registry
  properties: {
    principalId: endpointIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
  }
}

resource endpointModels 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, endpointIdentity.id, roles.storageBlobDataReader)
  scope: storage
  properties: {
    principalId: endpointIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
  }
}

resource endpointLogs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scoringLogsContainer.id, endpointIdentity.id, roles.storageBlobDataContributor)
  scope: scoringLogsContainer
  properties: {
    principalId: endpointIdentity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
  dependsOn: [dataContainers]
}

// Event Grid system topics (system-assigned): dead-lettering undeliverable events
resource storageTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, storageTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: storageTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
  dependsOn: [dataContainers]
}

resource workspaceTopicDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, workspaceTopic.id, roles.storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    principalId: workspaceTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
  dependsOn: [dataContainers]
}

// The person (or pipeline) running the deployment: uploads drops with --auth-mode login
resource deployerBlob 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerObjectId)) {
  name: guid(storage.id, deployerObjectId, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    principalId: deployerObjectId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// ---- Event Grid: blob arrivals → on_blob_drop (Flex Consumption runs only the Event Grid blob trigger), and Azure
// ML's ModelRegistered → on_model_registered. The subscriptions are in events.bicep (they need the webhook keys).
resource storageTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: names.storageTopic
  location: location
  identity: { type: 'SystemAssigned' }
  properties: { source: storage.id, topicType: 'Microsoft.Storage.StorageAccounts' }
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: names.workspaceTopic
  location: location
  identity: { type: 'SystemAssigned' }
  properties: { source: workspace.id, topicType: 'Microsoft.MachineLearningServices.Workspaces' }
}

module events 'events.bicep' = if (createEventSubscriptions) {
  name: 'event-subscriptions'
  params: {
    functionAppName: app.name
    storageTopicName: storageTopic.name
    workspaceTopicName: workspaceTopic.name
    storageAccountId: storage.id
    incomingContainer: containers.incoming
    batchContainer: containers.batch
    deadLetterContainer: containers.deadLetters
    modelName: modelName
  }
  dependsOn: [storageTopicDeadLetters, workspaceTopicDeadLetters]
}

module alerts 'alerts.bicep' = {
  name: 'alerts'
  params: { prefix: prefix, location: location, insightsId: insights.id, actionGroupId: actionGroupId }
}

output functionAppName string = app.name
output functionAppHostName string = app.properties.defaultHostName
output storageAccountName string = storage.name
output workspaceName string = workspace.name
output keyVaultName string = vault.name
output registryName string = registry.name
output qaEndpointName string = names.qaEndpoint
output prodEndpointName string = names.prodEndpoint
output jobIdentityClientId string = jobIdentity.properties.clientId
output endpointIdentityId string = endpointIdentity.id
output endpointIdentityClientId string = endpointIdentity.properties.clientId
output appIdentityClientId string = appIdentity.properties.clientId
