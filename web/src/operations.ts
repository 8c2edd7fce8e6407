// Every GraphQL document of the page. graphql-codegen reads them from here and checks each
// against ../schema.graphql: their result types come from src/gql (generated, not committed).
import { graphql } from "./gql";

export const Me = graphql(`
  query Me {
    me { name role expiresAt }
  }
`);

export const OperationFieldsDoc = graphql(`
  fragment OperationFields on Operation {
    id kind status done progress stage createdAt startedAt finishedAt requestedBy dismissed lastSequence
    error { code message }
    restorePoint { id label }
    localCopy { id fileName }
  }
`);

export const Operations = graphql(`
  query Operations {
    operations(first: 50) { nodes { ...OperationFields } }
  }
`);

export const OperationsChanged = graphql(`
  subscription OperationsChanged {
    operationsChanged(includeCurrent: true) { ...OperationFields }
  }
`);

export const OperationLog = graphql(`
  subscription OperationLog($id: ID!, $after: Int) {
    operationLog(id: $id, afterSequence: $after) { sequence at level message }
  }
`);

export const OperationProgress = graphql(`
  subscription OperationProgress($id: ID!) {
    operationProgress(id: $id) {
      ...OperationFields
      safetyRestorePoint { id label }
      changes { added removed changed unchanged addedBytes removedBytes changedBytes }
    }
  }
`);

export const RestorePoints = graphql(`
  query RestorePoints($first: Int!, $after: String, $origin: [RestorePointOrigin!], $pinned: Boolean, $search: String) {
    restorePoints(first: $first, after: $after, origin: $origin, pinned: $pinned, search: $search) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes {
        id label note origin createdAt createdBy sizeBytes itemCount pinned expiresAt
        verification { state verifiedAt problems repaired }
        remoteCopies { id location { name } }
        remoteCopiesUnknownAt
      }
    }
  }
`);

export const LocalCopies = graphql(`
  query LocalCopies {
    localCopies { id fileName sizeBytes modifiedAt encrypted restorePointId problem restorePoint { id label } }
  }
`);

export const SystemChanged = graphql(`
  subscription SystemChanged {
    systemChanged { state since serverVersion operation { id } }
  }
`);

export const CreateRestorePoint = graphql(`
  mutation CreateRestorePoint($label: String, $note: String, $expiresAt: DateTime) {
    createRestorePoint(label: $label, note: $note, expiresAt: $expiresAt) {
      operation { ...OperationFields }
      userErrors { code message field }
    }
  }
`);

export const UpdateRestorePoint = graphql(`
  mutation UpdateRestorePoint($id: ID!, $label: String, $note: String, $pinned: Boolean) {
    updateRestorePoint(id: $id, label: $label, note: $note, pinned: $pinned) {
      restorePoint { id label note pinned expiresAt }
      userErrors { code message field }
    }
  }
`);

export const ExportRestorePoint = graphql(`
  mutation ExportRestorePoint($id: ID!, $encrypt: Boolean = false) {
    exportRestorePoint(restorePointId: $id, encrypt: $encrypt) { operation { id } userErrors { code message field } }
  }
`);

export const ApplyRestorePoint = graphql(`
  mutation ApplyRestorePoint(
    $id: ID!
    $confirm: String!
    $safety: Boolean!
    $sources: [String!]
    $items: [ItemSelection!]
    $fingerprint: String
  ) {
    applyRestorePoint(
      restorePointId: $id
      confirm: $confirm
      createSafetyRestorePoint: $safety
      sources: $sources
      items: $items
      expectedFingerprint: $fingerprint
    ) {
      operation { ...OperationFields }
      userErrors { code message field }
    }
  }
`);

export const DeleteRestorePoint = graphql(`
  mutation DeleteRestorePoint($id: ID!) {
    deleteRestorePoint(id: $id) { deletedId userErrors { code message field } }
  }
`);

export const DismissOperation = graphql(`
  mutation DismissOperation($id: ID!) {
    dismissOperation(id: $id) { operation { ...OperationFields } userErrors { code message field } }
  }
`);

export const ImportLocalCopy = graphql(`
  mutation ImportLocalCopy($id: ID!) {
    importLocalCopy(localCopyId: $id) { operation { id } userErrors { code message field } }
  }
`);

export const DeleteRemoteCopy = graphql(`
  mutation DeleteRemoteCopy($id: ID!) {
    deleteRemoteCopy(id: $id) { deletedId userErrors { code message field } }
  }
`);

export const DeleteLocalCopy = graphql(`
  mutation DeleteLocalCopy($id: ID!) {
    deleteLocalCopy(id: $id) { deletedId userErrors { code message field } }
  }
`);

export const CreateDownloadUrl = graphql(`
  mutation CreateDownloadUrl($id: ID!) {
    createDownloadUrl(localCopyId: $id) { signedUrl { url expiresAt } userErrors { code message field } }
  }
`);

export const UploadLocalCopy = graphql(`
  mutation UploadLocalCopy($file: Upload!) {
    uploadLocalCopy(file: $file) { localCopy { id fileName } userErrors { code message field } }
  }
`);

export const BackupHealth = graphql(`
  query BackupHealth {
    backupHealth { status problems lastSuccessAt lastAttemptAt nextRunAt issues { message status subjectKind subjectId } }
  }
`);

export const BackupHealthChanged = graphql(`
  subscription BackupHealthChanged {
    backupHealthChanged { status problems lastSuccessAt lastAttemptAt nextRunAt issues { message status subjectKind subjectId } }
  }
`);

export const Storage = graphql(`
  query Storage {
    storage { storedBytes capturedBytes localCopiesBytes restorePointCount }
  }
`);

export const DismissFinishedOperations = graphql(`
  mutation DismissFinishedOperations {
    dismissFinishedOperations { dismissedIds userErrors { code message field } }
  }
`);

export const ScheduleFieldsDoc = graphql(`
  fragment ScheduleFields on Schedule {
    id name enabled cron timeZone labelTemplate nextRunAt lastRunAt lastSuccessAt afterChangeQuietSeconds copyToLocations
    retention { keepLast keepHourly keepDaily keepWeekly keepMonthly keepYearly keepWithinDays }
    lastOperation { id status error { code message } }
    kind verification { readPercent outdatedAfterDays copies }
  }
`);

export const Schedules = graphql(`
  query Schedules {
    schedules { ...ScheduleFields }
  }
`);

export const CreateSchedule = graphql(`
  mutation CreateSchedule($input: ScheduleInput!) {
    createSchedule(input: $input) { schedule { ...ScheduleFields } userErrors { code message field } }
  }
`);

export const UpdateSchedule = graphql(`
  mutation UpdateSchedule($id: ID!, $input: ScheduleInput!) {
    updateSchedule(id: $id, input: $input) { schedule { ...ScheduleFields } userErrors { code message field } }
  }
`);

export const DeleteSchedule = graphql(`
  mutation DeleteSchedule($id: ID!) {
    deleteSchedule(id: $id) { deletedId userErrors { code message field } }
  }
`);

export const PruneSchedule = graphql(`
  mutation PruneSchedule($id: ID!) {
    pruneSchedule(id: $id) { operation { id } userErrors { code message field } }
  }
`);

export const RunSchedule = graphql(`
  mutation RunSchedule($id: ID!) {
    runSchedule(id: $id) { operation { id } userErrors { code message field } }
  }
`);

export const RetentionPreview = graphql(`
  query RetentionPreview($id: ID!) {
    retentionPreview(scheduleId: $id) { keep reasons restorePoint { id label createdAt pinned } }
  }
`);

// The locations a schedule can copy to (the schedule form's checkboxes): names only, no listing.
export const LocationNames = graphql(`
  query LocationNames {
    locations { name kind }
  }
`);

export const Locations = graphql(`
  query Locations {
    locations {
      name kind encrypted reachable problem
      copies { id fileName sizeBytes modifiedAt encrypted problem restorePointId restorePoint { id label } }
    }
  }
`);

export const UploadToLocation = graphql(`
  mutation UploadToLocation($id: ID!, $location: String!) {
    uploadToLocation(localCopyId: $id, location: $location) { operation { ...OperationFields } userErrors { code message field } }
  }
`);

export const FetchFromLocation = graphql(`
  mutation FetchFromLocation($id: ID!) {
    fetchFromLocation(remoteCopyId: $id) { operation { ...OperationFields } userErrors { code message field } }
  }
`);

export const Sources = graphql(`
  query Sources {
    sources { name kind reachable problem }
  }
`);

export const DiffFieldsDoc = graphql(`
  fragment DiffFields on ConfigurationDiff {
    fingerprint
    summary { added removed changed unchanged addedBytes removedBytes changedBytes }
    changes(first: 100) {
      totalCount
      nodes {
        source path kind textDiff truncated
        settingsChanges { path before after beforePresent afterPresent }
      }
    }
  }
`);

export const CompareRestorePoints = graphql(`
  query CompareRestorePoints($from: ID!, $to: ID!) {
    compareRestorePoints(from: $from, to: $to) { ...DiffFields }
  }
`);

export const ApplyPreview = graphql(`
  query ApplyPreview($id: ID!, $sources: [String!], $items: [ItemSelection!]) {
    applyPreview(restorePointId: $id, sources: $sources, items: $items) { ...DiffFields }
  }
`);

// What the browse dialog shows, of a restore point (the database) or of a local copy (read from
// the file, `copy` true): one skips the other, so the dialog asks the same way for either.
export const BrowsedSources = graphql(`
  query BrowsedSources($id: ID!, $copy: Boolean!) {
    restorePoint(id: $id) @skip(if: $copy) { id sources }
    localCopy(id: $id) @include(if: $copy) { id sources }
  }
`);

export const ItemsPageDoc = graphql(`
  fragment ItemsPage on ItemConnection {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { source path kind sizeBytes modifiedAt rowCount }
  }
`);

export const BrowsedItems = graphql(`
  query BrowsedItems($id: ID!, $copy: Boolean!, $source: String!, $path: String, $first: Int!, $after: String) {
    restorePoint(id: $id) @skip(if: $copy) {
      id
      items(source: $source, path: $path, first: $first, after: $after) { ...ItemsPage }
    }
    localCopy(id: $id) @include(if: $copy) {
      id
      items(source: $source, path: $path, first: $first, after: $after) { ...ItemsPage }
    }
  }
`);

export const CreateItemDownloadUrl = graphql(`
  mutation CreateItemDownloadUrl($restorePointId: ID, $localCopyId: ID, $source: String!, $path: String!) {
    createItemDownloadUrl(restorePointId: $restorePointId, localCopyId: $localCopyId, source: $source, path: $path) {
      signedUrl { url expiresAt }
      userErrors { code message field }
    }
  }
`);

export const ApiTokens = graphql(`
  query ApiTokens {
    apiTokens { id name role status hint createdAt createdBy expiresAt revokedAt }
  }
`);

export const CreateApiToken = graphql(`
  mutation CreateApiToken($name: String!, $role: Role!, $expiresInSeconds: Int) {
    createApiToken(name: $name, role: $role, expiresInSeconds: $expiresInSeconds) {
      secret token { id name role } userErrors { code message field }
    }
  }
`);

export const RevokeApiToken = graphql(`
  mutation RevokeApiToken($id: ID!) {
    revokeApiToken(id: $id) { token { id status } userErrors { code message field } }
  }
`);

export const ExportEmergencyKit = graphql(`
  mutation ExportEmergencyKit($confirm: String!) {
    exportEmergencyKit(confirm: $confirm) { kit userErrors { code message field } }
  }
`);

export const NotificationTargets = graphql(`
  query NotificationTargets {
    notificationTargets { name url events lastSentAt lastError }
  }
`);

export const TestNotification = graphql(`
  mutation TestNotification($name: String!) {
    testNotification(name: $name) { delivered error userErrors { code message field } }
  }
`);

export const VerifyBackups = graphql(`
  mutation VerifyBackups($ids: [ID!]) {
    verifyBackups(restorePointIds: $ids) { operation { id } userErrors { code message field } }
  }
`);

// The newest restore point's verification, for the status region.
export const NewestVerification = graphql(`
  query NewestVerification {
    restorePoints(first: 1) { nodes { id verification { state verifiedAt } } }
  }
`);
