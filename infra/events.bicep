// The Event Grid subscriptions to the Function App's webhooks. Deployed by main.bicep with
// createEventSubscriptions=true, once the code is published: the extensions' system keys exist only then, and this
// template reads them itself (listKeys), so no key passes through a command line.
param functionAppName string
param storageTopicName string
param workspaceTopicName string
param storageAccountId string
param incomingContainer string
param batchContainer string
param deadLetterContainer string
param modelName string

resource app 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

resource storageTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: storageTopicName
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: workspaceTopicName
}

var hostKeys = listKeys('${app.id}/host/default', '2023-12-01')
var webhooks = 'https://${app.properties.defaultHostName}/runtime/webhooks'
// Event Grid retries a failed delivery with backoff for a day, then writes the event to the dead-letter container
// (with the topic's own identity: the account takes no shared keys)
var retryPolicy = { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
var deadLetters = {
  identity: { type: 'SystemAssigned' }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: { resourceId: storageAccountId, blobContainerName: deadLetterContainer }
  }
}

// Blob drops: the blob extension's webhook, as the Event Grid blob trigger expects (Host.Functions.<function>).
// The subject filter is the trigger path's literal prefix (%INCOMING_CONTAINER%/{name} → '<container>/').
resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: storageTopic
  name: 'incoming-to-on-blob-drop'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhooks}/blobs?functionName=Host.Functions.on_blob_drop&code=${hostKeys.systemKeys.blobs_extension}'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${incomingContainer}/blobs/'
      // only fully committed blobs (a block blob is complete at PutBlob / PutBlockList; CopyBlob ends a copy)
      advancedFilters: [{ operatorType: 'StringIn', key: 'data.api', values: ['PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose'] }]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetters
  }
}

// Batch inputs: the same webhook for on_batch_file. The trigger path is '%BATCH_CONTAINER%/{name}' (subject
// '<container>/'); the runs write their outputs and reports in the same container, under <model>/out/, so only
// subjects with an 'in' folder are delivered (the function ignores any other blob as well).
resource batchCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: storageTopic
  name: 'batch-to-on-batch-file'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhooks}/blobs?functionName=Host.Functions.on_batch_file&code=${hostKeys.systemKeys.blobs_extension}'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${batchContainer}/blobs/'
      advancedFilters: [
        { operatorType: 'StringIn', key: 'data.api', values: ['PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose'] }
        { operatorType: 'StringContains', key: 'subject', values: ['/in/'] }
      ]
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetters
  }
}

resource modelRegistered 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: workspaceTopic
  name: 'model-registered-to-on-model-registered'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: '${webhooks}/eventgrid?functionName=on_model_registered&code=${hostKeys.systemKeys.eventgrid_extension}'
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.MachineLearningServices.ModelRegistered']
      subjectBeginsWith: 'models/${modelName}:'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: deadLetters
  }
}
